"""Both publishers on the real broker after their producer's idempotent sequence broke.

A batch that fails after aiokafka numbered it leaves a gap in the producer's sequence for its
partition; the broker then refuses every later batch of that producer there
(OutOfOrderSequenceNumber). Here the gap comes from a record the topic refuses as too large:
the record itself is refused for good (not retriable), and the records after it are stored,
because the publisher replaced its producer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.errors import GatewayError, KafkaRecordRefusedError, KafkaUnavailableError
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, Settings

pytestmark = pytest.mark.kafka

Factory = Callable[[KafkaSettings, Metrics], KafkaPublisher | BatchingPublisher]
PUBLISHERS: dict[str, Factory] = {"send": KafkaPublisher, "batching": BatchingPublisher}


def kafka_settings(kafka: LocalKafka) -> KafkaSettings:
    return dataclasses.replace(
        Settings().kafka,
        bootstrap_servers=kafka.bootstrap_servers,
        request_timeout_seconds=5.0,
        delivery_timeout_seconds=10.0,
    )


async def small_topic(kafka: LocalKafka) -> str:
    """A one-partition topic that takes batches of at most 300 bytes."""
    topic = f"recovery.small.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "300"})]
        )
    finally:
        await admin.close()
    return topic


async def values_on(kafka: LocalKafka, topic: str, want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < want:
                batches = await consumer.getmany(timeout_ms=300)
                found += [m.value for ms in batches.values() for m in ms if m.value is not None]
    finally:
        await consumer.stop()
    return found


@pytest.mark.parametrize("kind", sorted(PUBLISHERS))
async def test_after_a_refused_record_the_partition_takes_records_again(
    kafka: LocalKafka, kind: str
) -> None:
    topic = await small_topic(kafka)
    metrics = Metrics()
    publisher = PUBLISHERS[kind](kafka_settings(kafka), metrics)
    await publisher.start()
    try:
        await publisher.publish(topic, b"k", b"before")
        with pytest.raises(KafkaRecordRefusedError) as refused:
            await publisher.publish(topic, b"k", b"x" * 1000)
        assert not refused.value.retriable
        after = [b"after-%d" % i for i in range(20)]
        for value in after:
            await publisher.publish(topic, b"k", value)
    finally:
        await publisher.stop()
    found = await values_on(kafka, topic, 21)
    assert found == [b"before", *after]
    replaced = metrics.registry.get_sample_value(
        "smsc_kafka_producer_replacements_total", {"error": "MessageSizeTooLargeError"}
    )
    assert replaced == 1


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    """A broker of this test's own: it is stopped and started again."""
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


async def keep_publishing(
    publisher: KafkaPublisher | BatchingPublisher, topic: str, stop: asyncio.Event
) -> Counter[str]:
    """Publish a record per millisecond (each without waiting for the one before) until
    ``stop``; the outcomes by error name."""
    outcomes: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            await publisher.publish(topic, b"%d" % (i % 30), b"load-%d" % i)
            outcomes["ok"] += 1
        except GatewayError as exc:
            outcomes[type(exc.__cause__ or exc).__name__] += 1

    tasks: set[asyncio.Task[None]] = set()
    i = 0
    while not stop.is_set():
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    return outcomes


@pytest.mark.parametrize("kind", sorted(PUBLISHERS))
async def test_publishing_recovers_after_batches_expired_without_a_leader(
    own_kafka: LocalKafka, kind: str
) -> None:
    # A broker stopped with SIGTERM first moves its partitions' leadership away: a producer
    # that asks for metadata then learns "no leader" and keeps it while the broker is gone.
    # Its batches expire after the request timeout, each leaving a gap in its sequence.
    topic = f"recovery.{uuid.uuid4().hex[:8]}"
    own_kafka.create_topics([topic], partitions=3)
    settings = dataclasses.replace(
        kafka_settings(own_kafka), request_timeout_seconds=1.0, delivery_timeout_seconds=3.0
    )
    metrics = Metrics()
    publisher = PUBLISHERS[kind](settings, metrics)
    await publisher.start()
    try:
        stop_load = asyncio.Event()
        load = asyncio.create_task(keep_publishing(publisher, topic, stop_load))
        await asyncio.sleep(1)
        await asyncio.to_thread(own_kafka.stop)
        await asyncio.sleep(4)  # several request timeouts: the batches expire
        await publisher.probe()
        assert not publisher.health.ready(time.monotonic())[0]
        await asyncio.to_thread(own_kafka.start)
        await asyncio.sleep(3)  # a delivery timeout: what waited on the old producer ends
        stop_load.set()
        during = await load
        after = [b"after-%d" % i for i in range(100)]
        async with asyncio.timeout(30):
            await asyncio.gather(
                *(publisher.publish(topic, b"%d" % i, v) for i, v in enumerate(after))
            )
        assert publisher.health.ready(time.monotonic())[0]
    finally:
        await publisher.stop()
    assert during["ok"] > 0, during
    # Batches expired without a leader, and the producer they broke was replaced.
    assert during["LeaderNotAvailableError"] + during["NotLeaderForPartitionError"] > 0, during
    replaced = metrics.registry.get_sample_value(
        "smsc_kafka_producer_replacements_total", {"error": "LeaderNotAvailableError"}
    ) or metrics.registry.get_sample_value(
        "smsc_kafka_producer_replacements_total", {"error": "NotLeaderForPartitionError"}
    )
    assert replaced, during
    found = set(await values_on(own_kafka, topic, during["ok"] + len(after)))
    assert set(after) <= found


@pytest.mark.parametrize("kind", sorted(PUBLISHERS))
async def test_with_the_broker_gone_stop_is_bounded_and_answers_every_caller(
    own_kafka: LocalKafka, kind: str
) -> None:
    topic = f"recovery.stop.{uuid.uuid4().hex[:8]}"
    own_kafka.create_topics([topic], partitions=3)
    publisher = PUBLISHERS[kind](kafka_settings(own_kafka), Metrics())
    await publisher.start()
    await publisher.publish(topic, b"k", b"before")  # the topic's metadata is known
    await asyncio.to_thread(own_kafka.stop)
    waiting = [
        asyncio.create_task(publisher.publish(topic, b"%d" % i, b"during")) for i in range(50)
    ]
    await asyncio.sleep(0.5)  # every record is with the producer, which retries in vain
    assert not any(task.done() for task in waiting)
    started = time.monotonic()
    await publisher.stop(timeout_seconds=2.0)
    assert time.monotonic() - started < 4.0
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 1)
    assert all(isinstance(outcome, KafkaUnavailableError) for outcome in outcomes), outcomes
