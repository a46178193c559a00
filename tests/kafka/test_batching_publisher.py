"""BatchingPublisher on the real broker: concurrent publishes share batches, keyed records
land where the producer's own partitioner puts them and keep their order, every caller gets
its own answer, a refused batch fails all its callers, and stop() delivers what it took."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from gateway.errors import GatewayError, KafkaRecordRefusedError, KafkaUnavailableError
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.client import KafkaPublisher
from gateway.kafka.partitioning import partition_of
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, Settings

pytestmark = pytest.mark.kafka

PARTITIONS = 3


def kafka_settings(kafka: LocalKafka, request_timeout_seconds: float = 10.0) -> KafkaSettings:
    return dataclasses.replace(
        Settings().kafka,
        bootstrap_servers=kafka.bootstrap_servers,
        request_timeout_seconds=request_timeout_seconds,
    )


def new_topic(kafka: LocalKafka) -> str:
    name = f"batching.{uuid.uuid4().hex[:8]}"
    kafka.create_topics([name], partitions=PARTITIONS)
    return name


@pytest.fixture
async def publisher(kafka: LocalKafka) -> AsyncIterator[BatchingPublisher]:
    running = BatchingPublisher(kafka_settings(kafka), Metrics())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def read_all(
    kafka: LocalKafka, topic: str, want: int
) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) of the topic's records in offset order per partition."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[tuple[int, bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < want:
                batches = await consumer.getmany(timeout_ms=300)
                found += [(m.partition, m.key, m.value) for ms in batches.values() for m in ms]
    finally:
        await consumer.stop()
    return found


async def test_concurrent_publishes_share_batches_and_keep_order_per_key(
    kafka: LocalKafka, publisher: BatchingPublisher
) -> None:
    topic = new_topic(kafka)
    keys = [f"7916{i:07d}".encode() for i in range(40)]
    # Ten records per key, all published in one turn of the loop, in sequence order.
    sends = [publisher.publish(topic, key, b"%s:%d" % (key, n)) for n in range(10) for key in keys]
    await asyncio.gather(*sends)

    assert publisher.records == 400
    assert publisher.batches <= PARTITIONS * 2  # one per partition, give or take a full one
    found = await read_all(kafka, topic, 400)
    sequences: dict[bytes, list[int]] = defaultdict(list)
    for _, key, value in found:
        assert key is not None
        owner, _, n = value.partition(b":")
        assert owner == key
        sequences[key].append(int(n))
    assert sequences == {key: list(range(10)) for key in keys}


async def test_keyed_records_land_on_the_producers_partition(
    kafka: LocalKafka, publisher: BatchingPublisher
) -> None:
    batched, plain = new_topic(kafka), new_topic(kafka)
    keys = [uuid.uuid4().hex.encode() for _ in range(60)]
    reference = KafkaPublisher(kafka_settings(kafka), Metrics(), linger_ms=0)
    await reference.start()
    try:
        await asyncio.gather(*(reference.publish(plain, key, b"x") for key in keys))
    finally:
        await reference.stop()
    await asyncio.gather(*(publisher.publish(batched, key, b"x") for key in keys))

    where_plain = {key: p for p, key, _ in await read_all(kafka, plain, len(keys))}
    where_batched = {key: p for p, key, _ in await read_all(kafka, batched, len(keys))}
    assert where_batched == where_plain
    assert len(set(where_batched.values())) == PARTITIONS  # the keys did spread


async def test_records_without_a_key_are_stored(
    kafka: LocalKafka, publisher: BatchingPublisher
) -> None:
    topic = new_topic(kafka)
    await asyncio.gather(*(publisher.publish(topic, None, b"v%d" % i) for i in range(30)))
    found = await read_all(kafka, topic, 30)
    assert sorted(value for _, _, value in found) == sorted(b"v%d" % i for i in range(30))


async def test_a_record_too_large_fails_alone(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics(), max_request_bytes=64 * 1024)
    await publisher.start()
    try:
        outcomes = await asyncio.gather(
            publisher.publish(topic, b"k", b"small-1"),
            publisher.publish(topic, b"k", b"x" * (64 * 1024)),
            publisher.publish(topic, b"k", b"small-2"),
            return_exceptions=True,
        )
    finally:
        await publisher.stop()
    assert outcomes[0] is None
    assert isinstance(outcomes[1], KafkaRecordRefusedError)
    assert not outcomes[1].retriable
    assert "exceeds max_request_bytes" in str(outcomes[1])
    assert outcomes[2] is None
    found = await read_all(kafka, topic, 2)
    assert [value for _, _, value in found] == [b"small-1", b"small-2"]


async def test_a_record_larger_than_a_batch_gets_one_of_its_own(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics(), max_batch_bytes=16 * 1024)
    await publisher.start()
    try:
        values = [b"small-1", b"x" * (20 * 1024), b"small-2", b"y" * (20 * 1024)]
        await asyncio.gather(*(publisher.publish(topic, b"same-key", v) for v in values))
    finally:
        await publisher.stop()
    assert publisher.batches >= 3  # a full batch is sealed and the next record starts one
    found = await read_all(kafka, topic, len(values))
    assert [value for _, _, value in found] == values


async def test_a_refused_batch_fails_each_of_its_callers(kafka: LocalKafka) -> None:
    # The topic takes batches of at most 300 bytes: one of these records alone fits, the
    # five published together share one batch, which the broker refuses as too large.
    topic = f"batching.small.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "300"})]
        )
    finally:
        await admin.close()
    metrics = Metrics()
    publisher = BatchingPublisher(kafka_settings(kafka), metrics)
    await publisher.start()
    try:
        await publisher.publish(topic, b"alone", b"v" * 100)
        outcomes = await asyncio.gather(
            *(publisher.publish(topic, b"k%d" % i, b"v" * 100) for i in range(5)),
            return_exceptions=True,
        )
    finally:
        await publisher.stop()
    assert all(isinstance(o, KafkaUnavailableError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 5  # each caller its own exception
    errors = metrics.registry.get_sample_value("smsc_kafka_publish_errors_total", {"topic": topic})
    assert errors == 5
    found = await read_all(kafka, topic, 1)
    assert [key for _, key, _ in found] == [b"alone"]


async def test_stop_delivers_what_it_took_and_refuses_the_rest(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics())
    await publisher.start()
    await publisher.publish(topic, b"k", b"first")  # the topic's metadata is known
    taken = [asyncio.create_task(publisher.publish(topic, b"k", b"%d" % i)) for i in range(50)]
    await asyncio.sleep(0)  # every task has appended its record
    await publisher.stop()
    assert all(task.done() and task.exception() is None for task in taken)
    with pytest.raises(KafkaUnavailableError, match="stopping"):
        await publisher.publish(topic, b"k", b"late")
    found = await read_all(kafka, topic, 51)
    assert [value for _, _, value in found] == [b"first"] + [b"%d" % i for i in range(50)]


async def test_latency_is_observed_per_record(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    metrics = Metrics()
    publisher = BatchingPublisher(kafka_settings(kafka), metrics)
    await publisher.start()
    try:
        await asyncio.gather(*(publisher.publish(topic, b"k%d" % i, b"v") for i in range(20)))
    finally:
        await publisher.stop()
    count = metrics.registry.get_sample_value(
        "smsc_kafka_publish_latency_seconds_count", {"topic": topic}
    )
    assert count == 20


async def test_enqueue_answers_each_record_by_callback_in_order(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics())
    await publisher.start()
    answers: list[tuple[int, GatewayError | None]] = []
    all_answered = asyncio.Event()

    def answer(i: int, error: GatewayError | None) -> None:
        answers.append((i, error))
        if len(answers) == 200:
            all_answered.set()

    try:
        # The first record of a topic waits for its metadata; the others join batches.
        for i in range(200):
            await publisher.enqueue(
                topic, b"k%d" % (i % 7), b"%d" % i, functools.partial(answer, i)
            )
        assert len(answers) < 200  # enqueue does not wait for Kafka
        async with asyncio.timeout(30):
            await all_answered.wait()
    finally:
        await publisher.stop()
    await publisher.enqueue(topic, b"k", b"late", lambda error: answers.append((-1, error)))
    assert sorted(i for i, error in answers if error is None) == list(range(200))
    (late,) = [error for i, error in answers if i == -1]
    assert isinstance(late, KafkaUnavailableError)
    assert "stopping" in str(late)
    found = await read_all(kafka, topic, 200)
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for _, key, value in found:
        by_key[key].append(int(value))
    assert all(values == sorted(values) for values in by_key.values())
    assert len(found) == 200


async def test_partitions_added_to_a_topic_are_used_once_the_metadata_has_them(
    kafka: LocalKafka,
) -> None:
    # The publisher keeps each topic's partitions between metadata updates: an update that
    # brings more partitions must move keys where every other client now puts them.
    topic = new_topic(kafka)
    settings = dataclasses.replace(kafka_settings(kafka), metadata_max_age_seconds=1.0)
    publisher = BatchingPublisher(settings, Metrics())
    await publisher.start()
    keys = [b"7916%07d" % i for i in range(60)]
    try:
        await asyncio.gather(*(publisher.publish(topic, key, b"before") for key in keys))
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_partitions({topic: NewPartitions(total_count=6)})
        finally:
            await admin.close()
        await asyncio.sleep(2.5)  # more than the metadata's maximum age
        await asyncio.gather(*(publisher.publish(topic, key, b"after") for key in keys))
    finally:
        await publisher.stop()
    found = await read_all(kafka, topic, 2 * len(keys))
    after = {key: p for p, key, value in found if value == b"after"}
    assert after == {key: partition_of(key, 6) for key in keys}
    assert max(after.values()) >= PARTITIONS  # some keys did move to the new partitions
