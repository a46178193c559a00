"""The issuer, the request lane and the decider with plain objects: what each wait_call
answer leads to, retries within the budget, invalid requests, idempotency, commits only of
what Kafka has, and expiry only once the topic was read to its end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from gateway.callconfirm.book import ConfirmationBook
from gateway.callconfirm.decider import Decider
from gateway.callconfirm.issuer import Issuer
from gateway.callconfirm.lane import RequestLane, committable
from gateway.callconfirm.metrics import CallConfirmMetrics
from gateway.errors import KafkaUnavailableError
from gateway.events.envelope import dumps
from gateway.events.waitcall import CallConfirmation, waitcall_event
from gateway.http_api.answers import CallNumber
from gateway.http_api.errors import (
    BlacklistedError,
    CircuitOpenError,
    HttpApiError,
    TooManyRequestsError,
)
from gateway.kafka.records import Partition, Record
from gateway.metrics import Metrics
from gateway.settings.callconfirm import CallConfirmSettings
from tests.sender.fakes import FakePublisher

WAITCALL, DEAD = "smsc.waitcall.v1", "smsc.dead-letter.v1"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
FAST = CallConfirmSettings(
    deadline_seconds=60.0,
    grace_seconds=5.0,
    retry_initial_seconds=0.01,
    retry_max_seconds=0.02,
    give_up_after_seconds=0.2,
)


class Desk:
    """wait_call.php answering from a script; the last answer repeats."""

    def __init__(self, *answers: CallNumber | HttpApiError) -> None:
        self.answers = list(answers) or [CallNumber("74950000101", ("74950000101",))]
        self.calls: list[str] = []

    async def wait_call(self, phone: str) -> CallNumber:
        self.calls.append(phone)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, HttpApiError):
            raise answer
        return answer


def request(request_id: str = "r1", phone: str = "+7 900 123-45-67", **extra: Any) -> bytes:
    doc = {"schema": "smsc.call-confirm/1", "request_id": request_id, "phone": phone}
    return orjson.dumps(doc | extra)


def record(value: bytes | None, offset: int = 0, partition: int = 0) -> Record:
    return Record("smsc.call-confirm.v1", partition, offset, b"k", value, 1_900_000_000_000)


def issuer(desk: Desk, publisher: FakePublisher, known: set[str] | None = None) -> Issuer:
    return Issuer(
        desk,
        publisher,
        (known or set()).__contains__,
        waitcall_topic=WAITCALL,
        dead_letter_topic=DEAD,
        settings=FAST,
        metrics=CallConfirmMetrics(Metrics()),
        clock=lambda: T0,
    )


async def test_a_number_given_is_published_with_the_request_and_the_deadline() -> None:
    publisher, desk = FakePublisher(), Desk()
    assert await issuer(desk, publisher).handle(
        record(request(tags={"user": "7"})), asyncio.Event()
    )
    (event,) = publisher.on(WAITCALL)
    assert (event["kind"], event["request_id"], event["phone"]) == (
        "number_issued",
        "r1",
        "79001234567",
    )
    assert (event["call_to"], event["all_phones"], event["tags"]) == (
        "74950000101",
        ["74950000101"],
        {"user": "7"},
    )
    assert event["deadline"] == "2030-01-01T00:01:00.000Z"
    assert publisher.published[0].key == b"79001234567"
    assert desk.calls == ["79001234567"]


async def test_a_blacklisted_phone_is_rejected_with_the_providers_code() -> None:
    publisher = FakePublisher()
    blacklisted = BlacklistedError(5, "phone is in the black list", script="wait_call")
    assert await issuer(Desk(blacklisted), publisher).handle(record(request()), asyncio.Event())
    (event,) = publisher.on(WAITCALL)
    assert (event["kind"], event["error_code"], event["reason"]["code"]) == (
        "rejected",
        5,
        "blacklisted",
    )
    assert event["source"] == "api"


async def test_temporary_errors_are_retried_then_the_number_comes() -> None:
    publisher = FakePublisher()
    busy = TooManyRequestsError(9, "wait", script="wait_call", retry_after_seconds=0.01)
    desk = Desk(busy, CircuitOpenError("ip_blocked", 0.01), CallNumber("1", ("1",)))
    assert await issuer(desk, publisher).handle(record(request()), asyncio.Event())
    assert [e["kind"] for e in publisher.on(WAITCALL)] == ["number_issued"]
    assert len(desk.calls) == 3


async def test_temporary_errors_past_the_budget_end_failed() -> None:
    publisher = FakePublisher()
    busy = TooManyRequestsError(9, "wait", script="wait_call", retry_after_seconds=0.05)
    assert await issuer(Desk(busy), publisher).handle(record(request()), asyncio.Event())
    (event,) = publisher.on(WAITCALL)
    assert (event["kind"], event["reason"]["code"], event["error_code"]) == (
        "failed",
        "too_many_requests",
        9,
    )


async def test_stop_during_a_retry_leaves_the_request_for_the_next_start() -> None:
    publisher, stop = FakePublisher(), asyncio.Event()
    busy = TooManyRequestsError(9, "wait", script="wait_call", retry_after_seconds=0.1)
    handling = asyncio.create_task(issuer(Desk(busy), publisher).handle(record(request()), stop))
    await asyncio.sleep(0.02)
    stop.set()
    assert await handling is False
    assert publisher.published == []


async def test_an_invalid_request_is_dead_lettered_and_rejected_when_its_id_is_readable() -> None:
    publisher = FakePublisher()
    handler = issuer(Desk(), publisher)
    assert await handler.handle(record(request(phone="12")), asyncio.Event())
    assert await handler.handle(record(b"not json", offset=1), asyncio.Event())
    dead = publisher.on(DEAD)
    assert [d["reason"]["code"] for d in dead] == ["invalid_phone", "invalid_json"]
    (rejected,) = publisher.on(WAITCALL)
    assert (rejected["kind"], rejected["request_id"], rejected["reason"]["code"]) == (
        "rejected",
        "r1",
        "invalid_phone",
    )


async def test_a_request_already_known_or_just_issued_gets_no_second_number() -> None:
    publisher, desk = FakePublisher(), Desk()
    handler = issuer(desk, publisher, known={"old"})
    assert await handler.handle(record(request("old")), asyncio.Event())
    assert await handler.handle(record(request("new")), asyncio.Event())
    assert await handler.handle(record(request("new"), offset=1), asyncio.Event())
    assert len(desk.calls) == 1
    assert len(publisher.on(WAITCALL)) == 1


async def test_kafka_down_is_waited_out_and_stop_abandons_the_record() -> None:
    publisher, stop = FakePublisher(), asyncio.Event()
    publisher.failing = True
    handling = asyncio.create_task(issuer(Desk(), publisher).handle(record(request()), stop))
    await asyncio.sleep(0.05)
    assert publisher.failures >= 2
    stop.set()
    assert await handling is False


def test_commits_stop_at_the_first_record_not_done_per_partition() -> None:
    records = [record(b"", offset=o, partition=p) for p, o in [(0, 5), (0, 6), (0, 7), (1, 3)]]
    offsets = committable(records, [True, False, True, True])
    topic = "smsc.call-confirm.v1"
    assert offsets == {Partition(topic, 0): 6, Partition(topic, 1): 4}


class Source:
    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches
        self.commits: list[dict[Partition, int]] = []

    async def fetch(self, timeout_seconds: float, max_records: int) -> list[Record]:
        await asyncio.sleep(0)
        return self.batches.pop(0) if self.batches else []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(dict(offsets))


async def test_the_lane_commits_a_batch_once_its_events_are_on_kafka() -> None:
    publisher = FakePublisher()
    source = Source([[record(request("a"), 0), record(request("b", "79001234568"), 1)]])
    lane = RequestLane(source, issuer(Desk(), publisher), FAST)
    stop = asyncio.Event()
    running = asyncio.create_task(lane.run(stop))
    while not source.commits:  # noqa: ASYNC110 - the fake has no event to wait on
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert source.commits == [{Partition("smsc.call-confirm.v1", 0): 2}]
    assert len(publisher.on(WAITCALL)) == 2


# -- the decider ----------------------------------------------------------------------------


class Topic:
    """The waitcall topic: what is published is read by the book once ``read_to_now`` runs,
    as the reader would; ``lagging`` makes that wait never end."""

    def __init__(self, book: ConfirmationBook, publisher: FakePublisher) -> None:
        self.book = book
        self.publisher = publisher
        self.unread: list[bytes] = []
        self.lagging = False

    async def read_to_now(self) -> None:
        if self.lagging:
            await asyncio.Event().wait()
        for value in self.unread:
            self.book.read(value)
        self.unread.clear()


def call_event(phone: str, at: datetime) -> bytes:
    return dumps(
        waitcall_event(CallConfirmation("webhook", phone, at, int(at.timestamp()), called_at=at))
    )


async def test_expiry_waits_until_the_topic_is_read_and_a_call_found_then_confirms() -> None:
    publisher, now = FakePublisher(), [T0]
    desk_issuer = issuer(Desk(), publisher)
    await desk_issuer.handle(record(request()), asyncio.Event())
    pages = ConfirmationBook(grace_seconds=FAST.grace_seconds, remember_seconds=3600)
    pages.read(publisher.published[0].value)
    topic = Topic(pages, publisher)
    decider = Decider(
        pages,
        publisher,
        topic,
        topic=WAITCALL,
        settings=FAST,
        metrics=CallConfirmMetrics(Metrics()),
        clock=lambda: now[0],
        read_to_now_seconds=0.05,
    )
    now[0] = T0 + timedelta(seconds=66)
    topic.unread.append(call_event("79001234567", T0 + timedelta(seconds=30)))
    topic.lagging = True
    assert await decider.decide() == 0, "no expiry while the topic is not read to its end"
    topic.lagging = False
    assert await decider.decide() == 1
    assert [e["kind"] for e in publisher.on(WAITCALL)] == ["number_issued", "confirmed"]
    assert await decider.decide() == 0, "decided once"
    assert pytest.approx(publisher.on(WAITCALL)[1]["latency_seconds"]) == 30.0


async def test_kafka_down_leaves_the_outcome_for_the_next_tick() -> None:
    publisher = FakePublisher()
    await issuer(Desk(), publisher).handle(record(request()), asyncio.Event())
    pages = ConfirmationBook(grace_seconds=FAST.grace_seconds, remember_seconds=3600)
    pages.read(publisher.published[0].value)
    late = T0 + timedelta(seconds=70)
    decider = Decider(
        pages,
        publisher,
        Topic(pages, publisher),
        topic=WAITCALL,
        settings=FAST,
        metrics=CallConfirmMetrics(Metrics()),
        clock=lambda: late,
    )
    publisher.failing = True
    with pytest.raises(KafkaUnavailableError):
        await decider.decide()
    publisher.failing = False
    assert await decider.decide() == 1
    assert [e["kind"] for e in publisher.on(WAITCALL)] == ["number_issued", "expired"]
