"""BatchingPublisher.offer on the real broker: records taken without awaiting anything, each
caller told by callback (with the seconds its record waited) once Kafka acknowledged it;
records offered before the topic's partitions are known wait for them, in order; refused
records are told at once; offered records are not timed in the publisher's histogram (their
caller times them)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from gateway.errors import GatewayError, KafkaRecordRefusedError, KafkaUnavailableError
from gateway.kafka.batching import BatchingPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from tests.kafka.test_batching_publisher import kafka_settings, new_topic, read_all

pytestmark = pytest.mark.kafka


class Answers:
    """What each offered record was told, by index; ``all_in`` once ``want`` answered."""

    def __init__(self, want: int) -> None:
        self.want = want
        self.told: dict[int, tuple[GatewayError | None, float]] = {}
        self.all_in = asyncio.Event()

    def settle(self, index: int) -> Settler:
        return Settler(self, index)


class Settler:
    def __init__(self, answers: Answers, index: int) -> None:
        self._answers = answers
        self._index = index

    def __call__(self, problem: GatewayError | None, seconds: float) -> None:
        answers = self._answers
        assert self._index not in answers.told, "told twice"
        answers.told[self._index] = (problem, seconds)
        if len(answers.told) == answers.want:
            answers.all_in.set()


async def test_offered_records_are_acknowledged_by_callback_in_order(kafka: LocalKafka) -> None:
    # A topic the publisher has not seen: the first records wait for its partitions.
    topic = new_topic(kafka)
    metrics = Metrics()
    publisher = BatchingPublisher(kafka_settings(kafka), metrics)
    await publisher.start()
    answers = Answers(300)
    try:
        for i in range(300):
            publisher.offer(topic, b"k%d" % (i % 7), b"%d" % i, answers.settle(i))
        assert len(answers.told) < 300  # offer does not wait for Kafka
        async with asyncio.timeout(30):
            await answers.all_in.wait()
    finally:
        await publisher.stop()
    assert all(problem is None and seconds > 0 for problem, seconds in answers.told.values())
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for _, key, value in await read_all(kafka, topic, 300):
        by_key[key].append(int(value))
    for key, values in by_key.items():
        assert values == sorted(values), key  # each key's records in the order offered
    assert sum(len(v) for v in by_key.values()) == 300
    timed = metrics.registry.get_sample_value(
        "smsc_kafka_publish_latency_seconds_count", {"topic": topic}
    )
    assert timed is None  # the caller times offered records, in its own histogram


async def test_a_record_too_large_is_refused_at_once(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics(), max_request_bytes=64 * 1024)
    await publisher.start()
    answers = Answers(2)
    try:
        await publisher.publish(topic, b"k", b"known")  # the partitions are known
        publisher.offer(topic, b"k", b"x" * 100_000, answers.settle(0))
        refused = answers.told[0][0]  # told before returning, and for good: never retried
        assert isinstance(refused, KafkaRecordRefusedError)
        assert not refused.retriable
        publisher.offer(topic, b"k", b"fine", answers.settle(1))
        async with asyncio.timeout(30):
            await answers.all_in.wait()
    finally:
        await publisher.stop()
    assert answers.told[1][0] is None


async def test_stop_delivers_what_was_offered_and_refuses_the_rest(kafka: LocalKafka) -> None:
    topic = new_topic(kafka)
    publisher = BatchingPublisher(kafka_settings(kafka), Metrics())
    await publisher.start()
    answers = Answers(51)
    for i in range(50):
        publisher.offer(topic, b"k", b"%d" % i, answers.settle(i))
    await publisher.stop()
    assert all(answers.told[i][0] is None for i in range(50))
    publisher.offer(topic, b"k", b"late", answers.settle(50))
    problem = answers.told[50][0]
    assert isinstance(problem, KafkaUnavailableError)
    assert "stopping" in str(problem)
    assert [v for _, _, v in await read_all(kafka, topic, 50)] == [b"%d" % i for i in range(50)]
