"""What a publish's outcome means, without a broker: errors sorted into retriable and refused
for good, readiness from outcomes and probes, and the bound on every wait."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import errors as kafka

from gateway.errors import (
    GatewayError,
    KafkaRecordRefusedError,
    KafkaRefusedError,
    KafkaUnavailableError,
)
from gateway.kafka.deadlines import DeliveryDeadlines
from gateway.kafka.errors import publish_error, read_error, send_breaks_producer
from gateway.kafka.health import PublishHealth


@pytest.mark.parametrize(
    "problem",
    [
        kafka.MessageSizeTooLargeError(),
        kafka.RecordListTooLargeError(),
        kafka.RecordTooLargeError(),
        kafka.CorruptRecordException(),
        kafka.InvalidTimestampError(),
    ],
)
def test_a_record_refused_for_good_is_not_retriable(problem: Exception) -> None:
    error = publish_error("smsc.dead-letter.v1", problem)
    assert isinstance(error, KafkaRecordRefusedError)
    assert not error.retriable
    assert error.__cause__ is problem
    assert "smsc.dead-letter.v1" in str(error)


@pytest.mark.parametrize(
    "problem",
    [
        kafka.InvalidTopicError(),
        kafka.TopicAuthorizationFailedError(),
        kafka.ClusterAuthorizationFailedError(),
        kafka.UnsupportedVersionError(),
        kafka.InvalidRequiredAcksError(),
        kafka.PolicyViolationError(),
        kafka.SaslAuthenticationFailed(),
    ],
)
def test_a_topic_refused_for_good_is_not_retriable(problem: Exception) -> None:
    error = publish_error("smsc.send-results.v1", problem)
    assert type(error) is KafkaRefusedError
    assert not error.retriable


@pytest.mark.parametrize(
    "problem",
    [
        kafka.LeaderNotAvailableError(),
        kafka.NotLeaderForPartitionError(),
        kafka.OutOfOrderSequenceNumber(),  # the producer is replaced; the record can be sent
        kafka.UnknownProducerId(),
        kafka.ProducerFenced(),
        kafka.KafkaTimeoutError(),
        kafka.KafkaConnectionError(),
        kafka.NotEnoughReplicasError(),
        kafka.UnknownError(),
    ],
)
def test_everything_else_is_retriable(problem: Exception) -> None:
    error = publish_error("smsc.dlr.v1", problem)
    assert isinstance(error, KafkaUnavailableError)
    assert error.retriable


def test_each_caller_gets_an_error_of_its_own() -> None:
    shared = KafkaUnavailableError("no producer")
    first, second = publish_error("t", shared), publish_error("t", shared)
    assert first is not second
    assert type(first) is type(second) is KafkaUnavailableError
    assert str(first) == str(second) == "no producer"


def test_send_errors_that_break_the_producer() -> None:
    # Raised before the record was numbered: the producer is fine.
    for fine in (
        kafka.KafkaTimeoutError(),
        kafka.MessageSizeTooLargeError(),
        kafka.UnknownTopicOrPartitionError(),
        kafka.ProducerClosed(),
    ):
        assert not send_breaks_producer(fine)
    # What aiokafka's stopped sender task repeats to every later send().
    for broken in (kafka.OutOfOrderSequenceNumber(), kafka.ProducerFenced(), kafka.KafkaError()):
        assert send_breaks_producer(broken)


def test_health_follows_the_latest_signal_and_goes_stale() -> None:
    health = PublishHealth(interval_seconds=5.0)
    assert health.ready(0.0) == (False, "kafka not writable: nothing published or probed yet")
    assert health.needs_probe(0.0)
    health.delivered(1.0)
    assert health.ready(2.0) == (True, "kafka writable")
    assert not health.needs_probe(5.9)
    assert health.needs_probe(6.0)
    health.failed(3.0, "publish to t failed: LeaderNotAvailableError()")
    ok, why = health.ready(3.0)
    assert not ok
    assert "LeaderNotAvailableError" in why
    health.probed(4.0, True)
    assert health.ready(4.0)[0]
    assert health.ready(19.0)[0]  # three intervals: still fresh enough
    assert health.ready(20.0) == (False, "kafka not confirmed writable for 16 s")
    health.probed(21.0, False)
    assert health.ready(20.0) == (
        False,
        "kafka not writable: no broker answered a metadata request",
    )


async def test_deadlines_fail_what_is_not_settled_in_time() -> None:
    loop = asyncio.get_running_loop()
    deadlines = DeliveryDeadlines(0.2)
    settled: asyncio.Future[None] = loop.create_future()
    late: asyncio.Future[None] = loop.create_future()
    deadlines.watch(settled)
    deadlines.watch(late)
    settled.set_result(None)
    await asyncio.sleep(0.1)
    assert not late.done()
    started = loop.time()
    with pytest.raises(KafkaUnavailableError, match=r"within 0\.2 s"):
        await late
    assert loop.time() - started < 0.2
    assert settled.result() is None


async def test_closing_the_deadlines_fails_everything_still_watched() -> None:
    loop = asyncio.get_running_loop()
    deadlines = DeliveryDeadlines(60.0)
    waiting: list[asyncio.Future[None]] = [loop.create_future() for _ in range(3)]
    for future in waiting:
        deadlines.watch(future)
    deadlines.close()
    for future in waiting:
        assert isinstance(future.exception(), GatewayError)


@pytest.mark.parametrize(
    "problem",
    [
        kafka.TopicAuthorizationFailedError(),
        kafka.GroupAuthorizationFailedError(),
        kafka.OffsetOutOfRangeError(),
        kafka.CorruptRecordException(),
        kafka.SaslAuthenticationFailed(),
    ],
)
def test_a_read_no_retry_can_mend_is_refused_for_good(problem: Exception) -> None:
    error = read_error(["smsc.send.v1"], problem)
    assert type(error) is KafkaRefusedError
    assert not error.retriable
    assert error.__cause__ is problem
    assert "smsc.send.v1" in str(error)


@pytest.mark.parametrize(
    "problem",
    [kafka.KafkaConnectionError(), kafka.NotLeaderForPartitionError(), kafka.KafkaError()],
)
def test_any_other_read_failure_is_kafka_unavailable(problem: Exception) -> None:
    error = read_error(["smsc.send.v1"], problem)
    assert type(error) is KafkaUnavailableError
    assert error.retriable
