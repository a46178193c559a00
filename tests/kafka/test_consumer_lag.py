"""Consumer lag on the real broker: every consuming process exports, per partition it holds,
the records past its group's committed offset.

First the consumer on its own (produce, fetch, commit part, read the gauge), then a sender
process that falls behind because its provider is unreachable, read from its /metrics, and
catches up once the provider is there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.lag import lag_of
from gateway.kafka.records import Partition
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import Settings, TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.test_send_path import PASSWORD, free_port, sender_env

pytestmark = pytest.mark.kafka

LAG = "smsc_kafka_consumer_lag"


def test_lag_counts_from_the_committed_offset_or_the_log_start() -> None:
    assert lag_of(committed=7, start=0, end=10) == 3
    assert lag_of(committed=None, start=4, end=10) == 6
    # Retention moved the start past the committed offset: those records are gone.
    assert lag_of(committed=2, start=5, end=10) == 5
    assert lag_of(committed=10, start=0, end=10) == 0


async def produce(kafka: LocalKafka, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value[-1:])
    finally:
        await producer.stop()


def lag_by_partition(metrics: Metrics, group: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == LAG and sample.labels["group"] == group:
                found[sample.labels["topic"], sample.labels["partition"]] = sample.value
    return found


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_a_consumer_exports_what_its_group_has_not_committed(kafka: LocalKafka) -> None:
    topic, group = f"lag.{uuid.uuid4().hex[:8]}", f"lag-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=1)
    await produce(kafka, topic, [f"r{i}".encode() for i in range(25)])
    metrics = Metrics()
    settings = dataclasses.replace(Settings().kafka, bootstrap_servers=kafka.bootstrap_servers)

    async def nothing(_: set[Partition]) -> None:
        return None

    source = KafkaRecordSource(
        settings, metrics, topics=[topic], group_id=group, on_revoked=nothing
    )
    await source.start()
    try:
        # Nothing committed yet: all 25 are behind, fetched or not.
        await until(lambda: lag_by_partition(metrics, group) == {(topic, "0"): 25}, 30, "25")
        fetched: list[int] = []
        while len(fetched) < 25:
            fetched += [r.offset for r in await source.fetch(1.0, 100)]
        await source.commit({Partition(topic, 0): 10})
        await until(lambda: lag_by_partition(metrics, group) == {(topic, "0"): 15}, 30, "15")
    finally:
        await source.stop()
    assert lag_by_partition(metrics, group) == {}, "a stopped consumer holds no partition"


def scrape(port: int) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == LAG
    }


async def test_a_sender_that_falls_behind_shows_its_backlog_and_then_catches_up(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    count, group = 40, f"lag-sender-{uuid.uuid4().hex[:8]}"
    requests = [
        orjson.dumps(
            {
                "schema": "smsc.send-request/1",
                "request_id": f"{group}-{i}",
                "recipients": [f"+7904{i:07d}"],
                "text": "lag",
            }
        )
        for i in range(count)
    ]
    await produce(kafka, topics.send, requests)
    smpp_port, http_port = free_port(), free_port()  # nothing listens on the SMPP port yet
    env = sender_env(kafka, topics, smpp_port, http_port, group)
    env |= {"GATEWAY_SMPP_RECONNECT_MAX_SECONDS": "0.5", "GATEWAY_LOG_LEVEL": "WARNING"}
    log = tmp_path / "sender.log"
    with log.open("ab") as out:
        sender = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sender", env=env, stdout=out, stderr=out
        )
    try:

        def backlog() -> float:
            assert sender.returncode is None, log.read_text()[-2000:]
            try:
                lag = scrape(http_port)
            except OSError:
                return -1.0  # not serving yet
            return sum(v for (g, t, _), v in lag.items() if g == group and t == topics.send)

        await until(lambda: backlog() == count, 60, f"a backlog of {count} on /metrics")
        config = SimulatorSettings(port=smpp_port, accounts={"gateway": PASSWORD})
        async with SmppSimulator(config):
            await until(lambda: backlog() == 0, 90, "the backlog worked off")
    finally:
        sender.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sender.wait(), 60)
