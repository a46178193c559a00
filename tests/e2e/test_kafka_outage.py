"""Kafka goes away in the middle of a run and comes back: nothing is lost or sent twice.

The sender keeps its results until Kafka acknowledges them, and commits no offset past a
record whose result is not durable. The broker here is a dedicated one, so stopping it does
not disturb the rest of the suite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles.sender import run_sender
from gateway.settings import Settings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

COUNT = 400


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


def settings_for(kafka: LocalKafka, smpp_port: int, password: str) -> Settings:
    base = Settings()
    return dataclasses.replace(
        base,
        kafka=dataclasses.replace(
            base.kafka, bootstrap_servers=kafka.bootstrap_servers, request_timeout_seconds=5.0
        ),
        smpp=dataclasses.replace(
            base.smpp, hosts=(f"127.0.0.1:{smpp_port}",), system_id="gateway",
            password=password, source_addr="Outage", window=16,
        ),
        sender=dataclasses.replace(
            base.sender, group_id=f"outage-{uuid.uuid4().hex[:6]}", retry_initial_seconds=0.2,
            retry_max_seconds=1.0,
        ),
        http=dataclasses.replace(base.http, host="127.0.0.1", port=0),
        rate=dataclasses.replace(base.rate, per_second=2000.0),
    )  # fmt: skip


async def produce(kafka: LocalKafka, topic: str, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for i in range(COUNT):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7903{i:07d}"],
                "text": f"outage test {i}",
            }
            await producer.send(topic, orjson.dumps(request), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(
    kafka: LocalKafka, topic: str, field: str, want: int, wait_seconds: float
) -> list[dict[str, Any]]:
    """Every event of ``topic`` until ``want`` distinct values of ``field`` were seen.

    Repeats (a report the provider delivered twice) do not count towards ``want``.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while len({e[field] for e in events}) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()
    return events


async def test_results_survive_a_kafka_outage_without_resending(own_kafka: LocalKafka) -> None:
    topics = Settings().topics
    own_kafka.create_topics([topics.send, topics.send_priority, topics.send_results, topics.dlr])
    run = uuid.uuid4().hex[:6]
    await produce(own_kafka, topics.send, run)
    # Slow delivery reports keep DELIVER_SMs arriving during the outage as well; the short
    # response timeout makes the simulator redeliver the ones the gateway cannot store yet.
    config = SimulatorSettings(
        accounts={"gateway": "pw"},
        dlr_delay_seconds=1.0,
        response_timeout_seconds=2.0,
        dlr_retry_seconds=1.0,
        rate_limit_per_second=None,
        duplicate_window_seconds=None,
    )
    async with SmppSimulator(config) as simulator:
        settings = settings_for(own_kafka, simulator.port, "pw")
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        while simulator.stats.submits < COUNT // 4:
            assert not sender.done(), sender
            await asyncio.sleep(0.05)
        own_kafka.stop()
        down_at = simulator.stats.submits
        await asyncio.sleep(6)  # longer than the producer's request timeout
        assert not sender.done(), "the sender must ride out a Kafka outage"
        await asyncio.to_thread(own_kafka.start)

        results = await read_all(own_kafka, topics.send_results, "request_id", COUNT, 120)
        reports = await read_all(own_kafka, topics.dlr, "message_id", COUNT, 120)
        stop.set()
        await asyncio.wait_for(sender, 60)

    assert down_at < COUNT, "the outage must happen in the middle of the run"
    by_request: dict[str, set[str]] = defaultdict(set)
    for event in results:
        validate_event(event)
        by_request[event["request_id"]].add(event["event_id"])
    assert len(by_request) == COUNT
    assert all(len(ids) == 1 for ids in by_request.values())
    assert {e["outcome"] for e in results} == {"accepted"}
    assert simulator.stats.submits == COUNT  # nothing was submitted twice
    accepted = {r["message_ids"][0] for e in results for r in e["recipients"]}
    assert accepted <= {e["message_id"] for e in reports}
    # Reports that came while Kafka was down were not acknowledged in time, so the provider
    # delivered them again; a report stored twice carries one event_id.
    assert simulator.stats.dlrs_refused + simulator.stats.dlrs_timed_out > 0
    report_ids: dict[str, set[str]] = defaultdict(set)
    for event in reports:
        validate_event(event)
        report_ids[event["message_id"]].add(event["event_id"])
    assert all(len(ids) == 1 for ids in report_ids.values())

    consumer = AIOKafkaConsumer(
        bootstrap_servers=own_kafka.bootstrap_servers, group_id=settings.sender.group_id
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topics.send, p) for p in range(3)]
        ends = await consumer.end_offsets(partitions)
        assert {tp: await consumer.committed(tp) for tp in partitions} == ends
    finally:
        await consumer.stop()
