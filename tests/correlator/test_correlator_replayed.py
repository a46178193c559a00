"""Reports of a first submit whose resend after a crash was refused as a duplicate.

The sender's result names no message id for such a recipient (the provider gives none with
a refusal); the correlator adopts the phone's reports with unknown ids, held before the result
or arriving within the hold after it, instead of dead-lettering them as unknown_message_id.
"""

from __future__ import annotations

import orjson

from gateway.events.send_result import ErrorInfo, RecipientOutcome, send_result_event
from tests.correlator.joinkit import SETTINGS, T0, Harness, at, dead_letters, report, statuses
from tests.eventcheck import validate_event

PHONE = "79990000001"


def replayed_result(request_id: str, phone: str = PHONE, when: float = T0) -> bytes:
    error = ErrorInfo("provider_duplicate", "refused as a duplicate of the first submit", 0x45)
    event = send_result_event(
        request_id=request_id,
        outcome="duplicate",
        occurred_at=at(when),
        received_at=at(when - 0.5),
        transport="smpp",
        recipients=[RecipientOutcome(phone, "duplicate", (), error)],
        tags={"order": "7"},
    )
    validate_event(event)
    return orjson.dumps(event)


def test_a_report_held_before_the_replayed_result_is_joined_to_it() -> None:
    h = Harness()
    assert h.report(report("500", PHONE, when=T0 - 5), now=T0 - 5).held == 1
    step = h.result(replayed_result("r1"), now=T0)
    (part,) = statuses(step, "part")
    assert (part["request_id"], part["message_id"], part["tags"]) == ("r1", "500", {"order": "7"})
    (message,) = statuses(step, "message")
    assert message["status"] == "delivered"
    assert h.tick(T0 + SETTINGS.hold_seconds + 1).outbound == []


def test_the_replayed_result_processed_again_after_a_crash_adopts_its_reports_again() -> None:
    """The tables kept the adoption (RocksDB, or the changelog) but its statuses were lost."""
    h = Harness()
    h.report(report("500", PHONE, when=T0 - 5), now=T0 - 5)
    h.report(report("600", "79009999999", when=T0 - 4), now=T0 - 4)
    value = replayed_result("r1")
    first = h.result(value, now=T0)
    again = h.restart(T0 + 20).result(value, now=T0 + 20)
    assert {o.document["event_id"]: o.document for o in again.outbound} == {
        o.document["event_id"]: o.document for o in first.outbound
    }
    assert len(statuses(again, "part")) == 1


def test_a_report_arriving_within_the_hold_after_the_result_is_adopted() -> None:
    h = Harness()
    h.result(replayed_result("r1"), now=T0)
    enroute = h.report(report("500", PHONE, "enroute", when=T0 + 1), now=T0 + 1)
    assert [s["request_id"] for s in statuses(enroute, "part")] == ["r1"]
    final = h.report(report("500", PHONE, when=T0 + 2), now=T0 + 2)
    assert statuses(final, "message")[0]["request_id"] == "r1"


def test_after_the_hold_an_unknown_report_is_held_and_dead_lettered_as_before() -> None:
    h = Harness()
    h.result(replayed_result("r1"), now=T0)
    h.tick(T0 + SETTINGS.hold_seconds + 1)
    late = T0 + SETTINGS.hold_seconds + 2
    assert h.report(report("500", PHONE, when=late), now=late).held == 1
    step = h.tick(late + SETTINGS.hold_seconds + 1)
    assert [d["reason"]["code"] for d in dead_letters(step)] == ["unknown_message_id"]


def test_another_phone_is_not_adopted() -> None:
    h = Harness()
    h.result(replayed_result("r1"), now=T0)
    assert h.report(report("500", "79990000002", when=T0 + 1), now=T0 + 1).held == 1


def test_the_marker_survives_a_restart() -> None:
    h = Harness()
    h.result(replayed_result("r1"), now=T0)
    again = h.restart(started_at=T0 + 5)
    step = again.report(report("500", PHONE, when=T0 + 6), now=T0 + 6)
    assert statuses(step, "part")[0]["request_id"] == "r1"
    assert again.correlator.part_count == 1
