"""The correlator's tables across restarts, on the real broker with the role as a process.

- A worker that lost its directory (or keeps none: the memory store) restores its tables from
  the changelogs: reports for messages submitted before the restart are still joined.
- A worker whose RocksDB directory is ahead of its changelogs, because Kafka lost its data
  (a broker rebuilt without its volume), wipes the stale partitions with a warning and
  restores them from the changelogs, instead of refusing to start (faust's
  ``ConsistencyError``) again and again under its supervisor.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.correlator.localstore import LocalPartition, stale
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from tests.correlator.runkit import (
    Collected,
    CorrelatorProcess,
    Traffic,
    build_traffic,
    collect,
    correlator_env,
    produce,
    running,
)

pytestmark = pytest.mark.kafka

SENDS = 200


async def _until(
    predicate: Callable[[], bool], process: CorrelatorProcess, seconds: float, seen: Collected
) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.process is not None
        assert process.process.returncode is None, process.tail()
        assert time.monotonic() < deadline, f"{len(seen.events)} events\n{process.tail()}"
        await asyncio.sleep(0.2)


async def _ready_with_parts(process: CorrelatorProcess, parts: int, seconds: float) -> None:
    """Until the worker's readiness reports ``parts`` entries in its parts table."""
    url = f"http://127.0.0.1:{process.env['GATEWAY_HTTP_PORT']}/readyz"
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            assert process.process is not None
            assert process.process.returncode is None, process.tail()
            assert time.monotonic() < deadline, process.tail()
            try:
                answer = await client.get(url)
                if answer.status_code == 200 and f"{parts} parts" in answer.text:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.2)


def _split(traffic: Traffic, topics: TopicSettings) -> tuple[list[tuple[str, bytes, bytes]], ...]:
    results = [r for r in traffic.records if r[0] == topics.send_results]
    reports = [r for r in traffic.records if r[0] == topics.dlr]
    return results, reports


def _joined(seen: Collected) -> set[str]:
    return {p["message_id"] for p in seen.of("smsc.status/1", "part")}


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_a_worker_without_its_directory_restores_the_tables_from_the_changelog(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path, store: str
) -> None:
    run = uuid.uuid4().hex[:6]
    traffic = build_traffic(topics, run, SENDS, 0, seed=3, long=False)
    results, reports = _split(traffic, topics)
    env = correlator_env(kafka, topics, run, tmp_path / "first", store=store)
    async with running(CorrelatorProcess(env, tmp_path / "first.log")) as first:
        await produce(kafka.bootstrap_servers, results, 1000)
        await _ready_with_parts(first, SENDS, 120)
    assert first.returncode == 0, first.tail()

    # Another directory: nothing local, everything from the changelog.
    env = env | {"GATEWAY_CORRELATOR_DATA_DIR": str(tmp_path / "second")}
    seen, done = Collected(), asyncio.Event()
    reader = asyncio.create_task(collect(kafka.bootstrap_servers, [topics.status], seen, done))
    try:
        async with running(CorrelatorProcess(env, tmp_path / "second.log")) as second:
            await _ready_with_parts(second, SENDS, 120)
            await produce(kafka.bootstrap_servers, reports, 1000)
            await _until(lambda: _joined(seen) >= set(traffic.parts), second, 120, seen)
    finally:
        done.set()
        await reader
    assert second.returncode == 0, second.tail()


def test_a_local_partition_ahead_of_its_changelog_is_stale() -> None:
    def local(partition: int, offset: int) -> LocalPartition:
        return LocalPartition("parts-changelog", partition, Path(f"/p{partition}"), offset)

    found = [local(0, 99), local(1, 100), local(2, 5), local(3, 0)]
    ends = {("parts-changelog", 0): 100, ("parts-changelog", 1): 100, ("parts-changelog", 2): 500}
    # Offset 99 is the changelog's last record (ends at 100): kept; 100 is past it; a
    # partition the changelog has no record in at all (a fresh broker) is past it too.
    assert stale(found, ends) == [local(1, 100), local(3, 0)]


async def test_a_store_ahead_of_a_fresh_brokers_changelog_is_wiped_and_restored(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    before = build_traffic(topics, run, SENDS, 0, seed=4, long=False)
    env = correlator_env(kafka, topics, run, tmp_path / "state", store="rocksdb", hold_seconds="3")
    async with running(CorrelatorProcess(env, tmp_path / "first.log")) as first:
        await produce(kafka.bootstrap_servers, _split(before, topics)[0], 1000)
        await _ready_with_parts(first, SENDS, 120)
    assert first.returncode == 0, first.tail()

    # Sends numbered like the first half of the earlier ones (same ids and phones), and a
    # report about a part only the stale store knows: it must not be joined any more.
    after = build_traffic(topics, f"{run}x", SENDS // 2, 0, seed=5, long=False)
    stale_id = list(before.parts)[-1]
    assert stale_id not in after.parts
    stale = _report_record(topics, before, stale_id)
    seen, done = Collected(), asyncio.Event()
    with LocalKafka(num_partitions=3) as fresh:  # Kafka without its data: a broker rebuilt
        fresh.create_topics(list(dataclasses.asdict(topics).values()), partitions=3)
        env |= {"GATEWAY_KAFKA_BOOTSTRAP_SERVERS": fresh.bootstrap_servers}
        lines = [topics.status, topics.dead_letter]
        reader = asyncio.create_task(collect(fresh.bootstrap_servers, lines, seen, done))
        try:
            async with running(CorrelatorProcess(env, tmp_path / "again.log")) as again:
                await _ready_with_parts(again, 0, 120)
                await produce(fresh.bootstrap_servers, [*after.records, stale], 1000)
                await _until(lambda: _joined(seen) >= set(after.parts), again, 120, seen)
                await _until(lambda: bool(seen.of("smsc.dead-letter/1")), again, 60, seen)
        finally:
            done.set()
            await reader
    assert again.returncode == 0, again.tail()
    [letter] = seen.of("smsc.dead-letter/1")
    assert letter["reason"]["code"] == "unknown_message_id"
    assert orjson.loads(base64.b64decode(letter["value_base64"]))["message_id"] == stale_id
    assert stale_id not in _joined(seen)
    assert "is ahead of its changelog" in again.log.read_text()


def _report_record(
    topics: TopicSettings, traffic: Traffic, message_id: str
) -> tuple[str, bytes, bytes]:
    return next(r for r in traffic.records if r[0] == topics.dlr and r[1] == message_id.encode())
