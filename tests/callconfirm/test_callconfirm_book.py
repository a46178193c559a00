"""The confirmation book on plain events: what a call confirms, when a confirmation expires,
and that a book rebuilt from the topic after a restart never decides a request twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.callconfirm.book import ConfirmationBook
from gateway.events.envelope import dumps, rfc3339
from gateway.events.waitcall import (
    CallConfirmation,
    NumberIssued,
    Outcome,
    number_issued_event,
    outcome_event,
    waitcall_event,
)
from tests.eventcheck import validate_event

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DEADLINE = timedelta(seconds=900)
GRACE = 300.0


def issued(request_id: str, phone: str = "79001234567", at: datetime = T0) -> bytes:
    event = number_issued_event(
        NumberIssued(
            request_id=request_id,
            phone=phone,
            call_to="74950000101",
            all_phones=("74950000101", "74950000102"),
            issued_at=at,
            deadline=at + DEADLINE,
            tags={"order": request_id},
        )
    )
    validate_event(event)
    return dumps(event)


def call(phone: str = "79001234567", at: datetime = T0 + timedelta(seconds=40)) -> bytes:
    event = waitcall_event(
        CallConfirmation(
            source="webhook",
            phone=phone,
            received_at=at + timedelta(seconds=1),
            ts=int(at.timestamp()),
            called_at=at,
        )
    )
    validate_event(event)
    return dumps(event)


def published(outcome: Outcome) -> bytes:
    event = outcome_event(outcome)
    validate_event(event)
    return dumps(event)


def book() -> ConfirmationBook:
    return ConfirmationBook(grace_seconds=GRACE, remember_seconds=86400)


def test_a_call_after_the_number_confirms_with_the_request_and_how_long_it_took() -> None:
    pages = book()
    assert pages.read(issued("r1")) is False
    assert pages.read(call()) is True
    (outcome,) = pages.due(T0 + timedelta(seconds=41))
    event = outcome_event(outcome)
    validate_event(event)
    assert (event["kind"], event["request_id"], event["tags"]) == (
        "confirmed",
        "r1",
        {"order": "r1"},
    )
    assert event["latency_seconds"] == 40.0
    assert event["call_event_id"] == orjson.loads(call())["event_id"]
    assert event["occurred_at"] == rfc3339(T0 + timedelta(seconds=40))
    assert event["call_to"] == "74950000101"


def test_a_call_before_the_number_or_from_another_phone_confirms_nothing() -> None:
    pages = book()
    assert pages.read(call(at=T0 - timedelta(seconds=5))) is False
    pages.read(issued("r1"))
    assert pages.read(call(phone="79990000000")) is False
    assert pages.due(T0 + timedelta(seconds=60)) == []
    assert pages.unmatched_calls == 2


def test_no_call_expires_once_deadline_and_grace_passed() -> None:
    pages = book()
    pages.read(issued("r1"))
    end = T0 + DEADLINE + timedelta(seconds=GRACE)
    assert pages.next_expiry() == end
    assert pages.due(end - timedelta(seconds=1)) == []
    (outcome,) = pages.due(end)
    assert (outcome.kind, outcome.decided_at) == ("expired", T0 + DEADLINE)
    validate_event(outcome_event(outcome))


def test_a_call_within_the_grace_still_confirms_a_later_one_does_not() -> None:
    pages = book()
    pages.read(issued("r1"))
    pages.read(issued("r2", phone="79001234568"))
    assert pages.read(call(at=T0 + DEADLINE + timedelta(seconds=GRACE - 1)))
    assert not pages.read(call("79001234568", at=T0 + DEADLINE + timedelta(seconds=GRACE + 1)))
    kinds = {o.request_id: o.kind for o in pages.due(T0 + DEADLINE + timedelta(seconds=GRACE))}
    assert kinds == {"r1": "confirmed", "r2": "expired"}


def test_one_call_confirms_every_request_pending_for_its_phone() -> None:
    pages = book()
    pages.read(issued("r1"))
    pages.read(issued("r2"))
    pages.read(call())
    assert sorted(o.request_id for o in pages.due(T0 + timedelta(seconds=41))) == ["r1", "r2"]


def test_an_outcome_on_the_topic_ends_the_request_and_it_stays_known() -> None:
    pages = book()
    pages.read(issued("r1"))
    pages.read(call())
    (outcome,) = pages.due(T0 + timedelta(seconds=41))
    pages.read(published(outcome))
    assert pages.due(T0 + timedelta(days=1)) == []
    assert pages.known("r1")
    assert len(pages) == 0
    pages.read(issued("r1"))  # the same request given a number again: not reopened
    assert len(pages) == 0
    pages.due(T0 + timedelta(days=2))
    assert not pages.known("r1"), "forgotten after remember_seconds"


def test_what_is_not_a_waitcall_event_is_skipped() -> None:
    pages = book()
    for value in (None, b"{", b"[]", b'{"schema": "smsc.dlr/1", "kind": "call"}'):
        assert pages.read(value) is False
    assert pages.read(b'{"schema": "smsc.waitcall/1", "kind": "number_issued"}') is False
    assert len(pages) == 0


# -- restarts: a book rebuilt from the topic never decides a request twice ------------------

Step = tuple[str, int]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["issue", "call", "wait", "restart"]), st.integers(0, 3)),
        max_size=40,
    )
)
def test_restarts_anywhere_never_give_a_request_two_outcomes(steps: list[Step]) -> None:
    log: list[bytes] = []
    pages, now, issued_count = book(), T0, 0

    def append(value: bytes) -> None:
        log.append(value)
        pages.read(value)

    for action, n in steps:
        phone = f"7900000000{n}"
        if action == "issue":
            append(issued(f"r{issued_count}", phone, now))
            issued_count += 1
        elif action == "call":
            append(call(phone, now))
        elif action == "wait":
            now += timedelta(seconds=(n + 1) * 200)
        else:
            pages = book()
            for value in log:
                pages.read(value)
        for outcome in pages.due(now):
            append(published(outcome))
            pages.ended(outcome.request_id, outcome.decided_at)
    events = [orjson.loads(value) for value in log]
    ends = [(i, e) for i, e in enumerate(events) if e["kind"] in {"confirmed", "expired"}]
    per_request: dict[str, list[dict[str, Any]]] = {}
    for _, event in ends:
        per_request.setdefault(event["request_id"], []).append(event)
    assert all(len(found) == 1 for found in per_request.values()), per_request
    for position, event in ends:
        if event["kind"] == "expired":
            assert not qualifying_call(events, event["request_id"], position)


def qualifying_call(events: list[dict[str, Any]], request_id: str, before: int) -> bool:
    """Whether a call that should have confirmed the request came before its outcome."""
    opened = next(
        i
        for i, e in enumerate(events)
        if e["kind"] == "number_issued" and e["request_id"] == request_id
    )
    number = events[opened]
    limit = datetime.fromisoformat(number["deadline"]) + timedelta(seconds=GRACE)
    return any(
        e["kind"] == "call"
        and e["phone"] == number["phone"]
        and datetime.fromisoformat(e["called_at"]) <= limit
        for e in events[opened + 1 : before]
    )
