"""Two correlator workers on the three-broker cluster, one SIGKILLed mid-run.

The survivor takes the dead worker's partitions and restores their tables from the
changelogs (replication factor 3). Every report must come out joined exactly as with one
worker - the checks are those of the single-worker test in tests/correlator - with repeats
of an event carrying the same ``event_id`` and content, and nothing dead-lettered but the
strays (reports for ids that never had a result).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.correlator.router import route_partition
from gateway.localkafka import LocalKafkaCluster
from gateway.settings import TopicSettings
from tests.cluster.rolekit import Figures
from tests.correlator.runkit import (
    Collected,
    CorrelatorProcess,
    Traffic,
    build_traffic,
    collect,
    correlator_env,
    produce,
    unread,
)
from tests.correlator.test_correlator_kafka import (
    HOLD_SECONDS,
    SENDS,
    STRAYS,
    _check_dead_letters,
    _check_repeats,
    _check_statuses,
    _missing,
)

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


def workers(
    cluster: LocalKafkaCluster, topics: TopicSettings, run: str, tmp_path: Path
) -> list[CorrelatorProcess]:
    found = []
    for name in ("worker-a", "worker-b"):
        env = correlator_env(
            cluster,
            topics,
            run,
            tmp_path / name,
            hold_seconds=str(HOLD_SECONDS),
            store="rocksdb",
            replication_factor="3",
        )
        found.append(CorrelatorProcess(env, tmp_path / f"{name}.log"))
    return found


async def _until(
    predicate: Callable[[], bool], seen: Collected, seconds: float, *alive: CorrelatorProcess
) -> float:
    """Seconds until ``predicate()``; fails with the progress (events seen every 10 s) if a
    worker exits or the time is up."""
    started = time.monotonic()
    progress: list[int] = []
    while not predicate():
        for worker in alive:
            assert worker.process is not None
            assert worker.process.returncode is None, worker.tail()
        elapsed = time.monotonic() - started
        if elapsed >= 10 * len(progress):
            progress.append(len(seen.events))
        tails = "\n".join(w.tail() for w in alive)
        assert elapsed < seconds, f"events seen every 10 s: {progress}\n{tails}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def _missing_by_partition(seen: Collected, traffic: Traffic) -> str:
    """The missing events counted by kind and by the route partition of their phone, then the
    first few of them."""
    missing = _missing(seen, traffic).splitlines()
    phones = {m: phone for m, (_, phone, _) in traffic.parts.items()}
    phones |= {request_id: phones[m] for m, (request_id, _, _) in traffic.parts.items()}
    phones |= {m: f"7999{int(m) - 90_000_000:07d}" for m in traffic.unknown}  # build_traffic's
    counts: Counter[str] = Counter()
    for line in missing[1:]:
        kind, _, subject = line.partition(" of ")
        subject = subject.split(":")[0]
        phone = phones.get(subject)
        where = "?" if phone is None else str(route_partition(phone.encode(), 3))
        counts[f"{kind.split()[0]} on route partition {where}"] += 1
    return f"{missing[0]} {dict(sorted(counts.items()))}\n" + "\n".join(missing[1:41])


# faust's rebalance and the restore of the dead worker's tables take minutes on a loaded
# machine; the waits inside stay bounded (300 s, then 600 s).
@pytest.mark.timeout(1200)
async def test_two_workers_one_sigkilled_every_report_joined_once(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics, run = cluster_topics, uuid.uuid4().hex[:6]
    traffic = build_traffic(topics, run, SENDS, STRAYS, seed=14)
    survivor, victim = workers(cluster, topics, run, tmp_path)
    seen, done = Collected(), asyncio.Event()
    bootstrap = cluster.bootstrap_servers
    reader = asyncio.create_task(
        collect(bootstrap, [topics.status, topics.dead_letter], seen, done)
    )
    await survivor.start()
    await victim.start()
    feeding = asyncio.create_task(produce(bootstrap, traffic.records, 1000))
    expected = len(traffic.parts) + SENDS + STRAYS
    try:
        started = time.monotonic()
        await _until(
            lambda: len(seen.events) > len(traffic.parts) // 3, seen, 300, survivor, victim
        )
        await victim.kill()
        killed_at = len(seen.events)
        await feeding
        try:
            took = await _until(lambda: len(seen.events) >= expected, seen, 600, survivor)
        except AssertionError as exc:
            readable = [topics.status, topics.dead_letter]
            behind = await unread(bootstrap, readable, seen)
            detail = f"{_missing_by_partition(seen, traffic)}\nunread: {behind}"
            raise AssertionError(f"{detail}\n{exc}") from exc
        finished = time.monotonic() - started
        await asyncio.sleep(2 * 0.5)  # a few more ticks: nothing else may come
    finally:
        done.set()
        feeding.cancel()
        await reader
        code = await survivor.stop()
    assert code == 0, survivor.tail()
    assert killed_at < expected, "the kill must come in the middle of the run"
    repeated = sum(1 for docs in seen.events.values() if len(docs) > 1)
    figures(
        f"worker SIGKILLed after {killed_at} of {expected} events; the survivor published "
        f"the rest {took:.1f} s after the kill ({finished:.0f} s in all); {repeated} events "
        f"published more than once"
    )
    _check_dead_letters(seen, traffic, topics)
    _check_statuses(seen, traffic, run)
    _check_repeats(seen)
