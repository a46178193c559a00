"""The reassembler on the real broker: parts stored by DeliverSmPublisher, whole messages out.

Parts go in as the binds store them (DeliverSmPublisher, answered once Kafka has the part);
the Reassembler reads them in its group and publishes ``smsc.incoming/1`` events, each read
back from Kafka and validated against the schema.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.compose.encoding import Encoding
from gateway.errors import KafkaUnavailableError
from gateway.inbound.publisher import DeliverSmPublisher
from gateway.inbound.reassembly_service import Reassembler
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import Settings, TopicSettings
from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import DeliverSm
from tests.e2e.support import read_events
from tests.inbound.concat_support import deliver_parts

pytestmark = pytest.mark.kafka

Events = list[dict[str, Any]]


def reassembly_settings(kafka: LocalKafka, topics: TopicSettings, **reassembly: Any) -> Settings:
    base = Settings()
    options: dict[str, Any] = {
        "group_id": f"reassembler-{uuid.uuid4().hex[:8]}",
        "commit_interval_seconds": 0.2,
    }
    return dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, bootstrap_servers=kafka.bootstrap_servers),
        topics=topics,
        reassembly=dataclasses.replace(base.reassembly, **(options | reassembly)),
    )


@asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(settings.kafka, Metrics())
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


@asynccontextmanager
async def reassembling(
    settings: Settings, publisher: Any, metrics: Metrics | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(Reassembler(settings, metrics or Metrics(), publisher).run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)  # returns once its consumer is closed


async def store(publisher: KafkaPublisher, topics: TopicSettings, pdus: list[DeliverSm]) -> None:
    """Hand the PDUs to the binds' publisher; each must be answered ESME_ROK."""
    answers: list[int] = []
    handler = DeliverSmPublisher(publisher, topics, Metrics(), role="receiver")
    for pdu in pdus:
        handler.submit(pdu, answers.append, bind="rx-0")
    await asyncio.wait_for(handler.drain(), 30)
    assert answers == [CommandStatus.ESME_ROK] * len(pdus)


def texts(events: Events) -> set[str]:
    return {e["text"] for e in events}


MESSAGES: list[tuple[str | bytes, dict[str, Any]]] = [
    ("GSM seven-bit text, {escaped} and €uro. " * 10, {"encoding": Encoding.GSM7}),
    ("Latin-1: café, crème brûlée, façade. " * 10, {"encoding": Encoding.LATIN1}),
    ("UCS2: Привет, мир! 😀 " * 12, {"encoding": Encoding.UCS2, "reference_bits": 16}),
    ("SAR parts: sar_msg_ref_num and friends. " * 10, {"split": "sar", "reference": 4242}),
]


async def test_shuffled_parts_of_every_kind_become_one_event_each(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics)
    pdus: list[DeliverSm] = []
    for index, (text, options) in enumerate(MESSAGES):
        pdus += deliver_parts(text, source=f"+7900000000{index}", **options)
    binary = bytes(range(256)) * 2
    pdus += deliver_parts(binary, source="+79000000009")
    random.Random(6).shuffle(pdus)
    async with producer(settings) as publisher, reassembling(settings, publisher):
        await store(publisher, topics, pdus)
        events = await read_events(kafka, topics.incoming, lambda e: len(e) >= len(MESSAGES) + 1)
    assert texts(events) >= {text for text, _ in MESSAGES}
    assert len(events) == len(MESSAGES) + 1
    assert all(e["parts"] >= 2 and e["partial"] is False and e["missing"] == [] for e in events)
    (octets,) = [e for e in events if e["phone"] == "79000000009"]
    joined = b"".join(bytes.fromhex(p["short_message_hex"][12:]) for p in octets["raw"]["parts"])
    assert joined == binary  # each part's 6-octet header (12 hex digits) left out


async def test_single_sms_skip_reassembly(kafka: LocalKafka, topics: TopicSettings) -> None:
    settings = reassembly_settings(kafka, topics)
    async with producer(settings) as publisher:
        await store(publisher, topics, deliver_parts("short and whole"))
        (event,) = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
        parts = await read_events(kafka, topics.incoming_parts, lambda e: False, wait_seconds=1)
    assert event["text"] == "short and whole"
    assert "parts" not in event
    assert parts == []


async def test_missing_part_times_out_into_a_partial_event(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics, timeout_seconds=1.0)
    first, _, third = deliver_parts("A long message that loses its middle part. " * 9)
    metrics = Metrics()
    async with producer(settings) as publisher, reassembling(settings, publisher, metrics):
        await store(publisher, topics, [third, first])
        (event,) = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
    assert (event["parts"], event["partial"], event["missing"]) == (3, True, [2])
    assert event["text"].startswith("A long message")
    outcome = {"outcome": "timed_out"}
    assert metrics.registry.get_sample_value("smsc_reassembly_messages_total", outcome) == 1


async def test_restart_with_parts_pending_loses_nothing(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics)
    pending = deliver_parts("Started before the restart, finished after it. " * 8, reference=1)
    whole = deliver_parts("Finished before the restart, read again after. " * 8, reference=2)
    async with producer(settings) as publisher:
        async with reassembling(settings, publisher):
            await store(publisher, topics, pending[:-1] + whole)
            before = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
        # Stopped with a message pending: the next process rebuilds it from the topic.
        async with reassembling(settings, publisher):
            await store(publisher, topics, pending[-1:])
            events = await read_events(kafka, topics.incoming, lambda e: len(texts(e)) >= 2)
    assert len(before) == 1
    by_text = {e["text"]: e for e in events}
    assert set(by_text) == {
        "Started before the restart, finished after it. " * 8,
        "Finished before the restart, read again after. " * 8,
    }
    assert all(e["partial"] is False for e in events)
    # A message published again after the restart carries the same event_id.
    assert {e["event_id"] for e in events if e["text"] == before[0]["text"]} == {
        before[0]["event_id"]
    }


class FailingFirst:
    """A Publisher over the real one whose first ``failures`` publishes Kafka refuses."""

    def __init__(self, publisher: KafkaPublisher, failures: int) -> None:
        self._publisher = publisher
        self.failures = failures

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaUnavailableError("broker not reachable")
        await self._publisher.publish(topic, key, value)


async def test_a_message_kafka_refuses_is_retried_not_dropped(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics, retry_initial_seconds=0.05)
    async with producer(settings) as publisher:
        flaky = FailingFirst(publisher, failures=3)
        async with reassembling(settings, flaky):
            await store(publisher, topics, deliver_parts("Kept until Kafka takes it. " * 8))
            (event,) = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
    assert flaky.failures == 0
    assert event["text"] == "Kept until Kafka takes it. " * 8


async def test_unreadable_part_record_is_dead_lettered_and_blocks_nothing(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics)
    pdus = deliver_parts("After the bad record. " * 10, source="+79005550000")
    async with producer(settings) as publisher, reassembling(settings, publisher):
        await publisher.publish(topics.incoming_parts, b"79005550000", b"not a part")
        await store(publisher, topics, pdus)
        (event,) = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
        (dead,) = await read_events(kafka, topics.dead_letter, lambda e: len(e) >= 1)
    assert event["text"] == "After the bad record. " * 10
    assert dead["role"] == "reassembler"
    assert dead["reason"]["code"] == "invalid_part_record"
    assert dead["origin"]["topic"] == topics.incoming_parts


async def test_catching_up_after_downtime_does_not_time_out_what_was_whole(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    # Stored while no reassembler ran, read back one record per fetch after more than the
    # timeout: the wall clock must not count until the partition has been read to its end.
    settings = reassembly_settings(kafka, topics, timeout_seconds=1.0, fetch_max_records=1)
    text = "Stored while the reassembler was down. " * 10
    async with producer(settings) as publisher:
        await store(publisher, topics, deliver_parts(text))
        await asyncio.sleep(1.5)
        async with reassembling(settings, publisher):
            (event,) = await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
            # Nothing else follows (no partial from a false timeout).
            assert await read_events(
                kafka, topics.incoming, lambda e: len(e) > 1, wait_seconds=3
            ) == [event]
    assert (event["text"], event["partial"]) == (text, False)


async def test_a_part_delivered_again_after_completion_publishes_nothing_more(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    settings = reassembly_settings(kafka, topics, timeout_seconds=2.0)
    pdus = deliver_parts("The provider repeats a part whose answer it did not get. " * 6)
    metrics = Metrics()
    async with producer(settings) as publisher, reassembling(settings, publisher, metrics):
        await store(publisher, topics, pdus)
        await read_events(kafka, topics.incoming, lambda e: len(e) >= 1)
        await store(publisher, topics, pdus[:1])
        # Past the timeout, so a bogus message started by the repeat would have timed out.
        events = await read_events(kafka, topics.incoming, lambda e: len(e) > 1, wait_seconds=4)
    assert len(events) == 1
    duplicate = {"outcome": "duplicate"}
    assert metrics.registry.get_sample_value("smsc_reassembly_parts_total", duplicate) == 1
