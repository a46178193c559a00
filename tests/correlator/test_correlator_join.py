"""The join with plain objects: dict stores, real event builders, a clock passed in."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.correlator.join import JoinSettings, overall_status
from gateway.correlator.records import Step
from tests.correlator.joinkit import (
    T0,
    Harness,
    dead_letters,
    report,
    result,
    statuses,
)

PHONE = "79001234567"


def test_report_after_its_result_is_published_with_the_request_fields() -> None:
    h = Harness()
    h.result(result("req-1", PHONE, ("101",), T0, campaign="spring"), T0)
    step = h.report(report("101", PHONE, when=T0 + 7.5), T0 + 8)
    [part] = statuses(step, "part")
    assert part["request_id"] == "req-1"
    assert part["tags"] == {"campaign": "spring"}
    assert part["message_id"] == "101"
    assert part["part"] == {"index": 1, "count": 1}
    assert (part["status"], part["final"]) == ("delivered", True)
    assert part["latency_seconds"] == 7.5
    assert part["report"]["stat"] == "DELIVRD"
    assert part["report"]["cost"] == "1.95"
    [message] = statuses(step, "message")
    assert (message["status"], message["complete"]) == ("delivered", True)
    assert step.joined == 1


def test_phone_forms_and_message_id_forms_still_match() -> None:
    h = Harness()
    h.result(result("req-1", PHONE, ("0000101",)), T0)
    step = h.report(report("101", "+" + PHONE), T0 + 1)
    assert [s["request_id"] for s in statuses(step, "part")] == ["req-1"]


def test_report_before_its_result_waits_and_is_joined_when_the_result_comes() -> None:
    h = Harness()
    early = h.report(report("101", PHONE, when=T0 + 1), T0 + 1)
    assert early.outbound == []
    assert early.held == 1
    assert h.correlator.held_count == 1
    step = h.result(result("req-1", PHONE, ("101",), T0), T0 + 2)
    assert [s["request_id"] for s in statuses(step, "part")] == ["req-1"]
    assert len(statuses(step, "message")) == 1
    assert h.correlator.held_count == 0
    assert h.tick(T0 + 1000).outbound == []


def test_a_report_nobody_claims_is_dead_lettered_after_the_hold() -> None:
    h = Harness()
    value = report("999", PHONE, when=T0)
    h.report(value, T0)
    assert h.tick(T0 + 59).outbound == []
    step = h.tick(T0 + 61)
    [letter] = dead_letters(step)
    assert letter["reason"]["code"] == "unknown_message_id"
    assert letter["origin"] == {"kind": "kafka", "topic": "dlr", "partition": 0, "offset": 1}
    assert base64.b64decode(letter["value_base64"]) == value
    assert base64.b64decode(letter["key_base64"]) == b"999"
    assert step.dead_lettered == ["unknown_message_id"]
    assert h.correlator.held_count == 0
    assert h.tick(T0 + 61 + 61).outbound == []
    assert h.held.data == {}


def test_reports_dead_lettered_before_a_crash_are_dead_lettered_again_after_recovery() -> None:
    """The stores may keep the step that dead-lettered a report while a crash lost the dead
    letter: the first tick after the recovery sends it again, the same event."""
    h = Harness()
    h.report(report("999", PHONE), T0)
    letters = dead_letters(h.tick(T0 + 61))
    assert len(letters) == 1
    restarted = h.restart(T0 + 70)
    assert restarted.correlator.held_count == 0
    assert dead_letters(restarted.tick(T0 + 71)) == letters
    assert restarted.tick(T0 + 72).outbound == []
    late = restarted.result(result("req-1", PHONE, ("999",)), T0 + 73)
    assert late.outbound == []  # dead-lettered: not joined to a result that comes later
    assert restarted.tick(T0 + 70 + 61).outbound == []
    assert h.held.data == {}


def test_after_a_restart_held_reports_get_a_full_hold_again() -> None:
    h = Harness()
    h.report(report("101", PHONE), T0)
    restarted = h.restart(started_at=T0 + 500)
    assert restarted.correlator.held_count == 1
    assert restarted.tick(T0 + 501).outbound == []
    step = restarted.result(result("req-1", PHONE, ("101",)), T0 + 502)
    assert len(statuses(step, "part")) == 1


def test_a_hold_restarts_when_the_recovery_ends_not_when_the_worker_starts() -> None:
    # The recovery from the changelog took longer than the hold (60 s): the held report
    # still waits a full hold from the end of the recovery for its result in the backlog.
    h = Harness()
    h.report(report("101", PHONE), T0)
    restarted = h.restart(started_at=T0 + 500, recovered_at=T0 + 590)
    assert restarted.tick(T0 + 640).outbound == []
    step = restarted.result(result("req-1", PHONE, ("101",)), T0 + 645)
    assert len(statuses(step, "part")) == 1
    assert dead_letters(step) == []


def test_long_message_statuses_per_part_then_one_overall() -> None:
    h = Harness()
    h.result(result("req-L", PHONE, ("1", "2", "3")), T0)
    first = h.report(report("1", PHONE), T0 + 1)
    third = h.report(report("3", PHONE), T0 + 2)
    assert statuses(first, "message") == statuses(third, "message") == []
    second = h.report(report("2", PHONE, "undeliverable", when=T0 + 3), T0 + 3)
    [part] = statuses(second, "part")
    assert part["part"] == {"index": 2, "count": 3}
    [message] = statuses(second, "message")
    assert message["status"] == "undeliverable"
    assert message["complete"] is True
    assert [p["status"] for p in message["parts"]] == ["delivered", "undeliverable", "delivered"]
    assert message["latency_seconds"] == 3.0


def test_intermediate_reports_are_published_but_decide_nothing() -> None:
    h = Harness()
    h.result(result("req-1", PHONE, ("101",)), T0)
    step = h.report(report("101", PHONE, "enroute"), T0 + 1)
    [part] = statuses(step, "part")
    assert (part["status"], part["final"]) == ("enroute", False)
    assert statuses(step, "message") == []


def test_parts_that_never_report_expire_with_an_incomplete_overall() -> None:
    h = Harness()
    h.result(result("req-L", PHONE, ("1", "2")), T0)
    h.report(report("1", PHONE), T0 + 1)
    assert h.tick(T0 + 3599).outbound == []
    step = h.tick(T0 + 3601)
    [message] = statuses(step, "message")
    assert (message["status"], message["complete"]) == ("unknown", False)
    assert [p["status"] for p in message["parts"]] == ["delivered", None]
    assert message["latency_seconds"] == 3600.0
    assert step.expired_incomplete == 1
    assert h.parts.data == {}
    assert h.correlator.part_count == 0
    late = h.report(report("2", PHONE), T0 + 3700)
    assert late.held == 1  # unknown now: held, then dead-lettered like any stray


def test_a_failed_part_decides_the_incomplete_overall() -> None:
    h = Harness()
    h.result(result("req-L", PHONE, ("1", "2")), T0)
    h.report(report("1", PHONE, "expired"), T0 + 1)
    [message] = statuses(h.tick(T0 + 3601), "message")
    assert (message["status"], message["complete"]) == ("expired", False)


def test_completed_messages_stay_for_repeats_then_leave() -> None:
    h = Harness()
    h.result(result("req-1", PHONE, ("101",)), T0)
    first = h.report(report("101", PHONE), T0 + 1)
    repeat = h.report(report("101", PHONE), T0 + 100)
    assert [e.document["event_id"] for e in first.outbound] == [
        e.document["event_id"] for e in repeat.outbound
    ]
    assert statuses(first, "message") == statuses(repeat, "message")
    assert h.tick(T0 + 600).outbound == []  # done_ttl from completion (T0 + 1)
    assert h.correlator.part_count == 1
    step = h.tick(T0 + 602)
    assert step.expired_complete == 1
    assert step.outbound == []
    assert h.parts.data == {}


def test_a_replayed_result_keeps_the_recorded_statuses() -> None:
    h = Harness()
    value = result("req-L", PHONE, ("1", "2"))
    h.result(value, T0)
    h.report(report("1", PHONE), T0 + 1)
    h.result(value, T0 + 2)
    step = h.report(report("2", PHONE), T0 + 3)
    assert [m["status"] for m in statuses(step, "message")] == ["delivered"]


def test_a_later_final_status_is_published_but_the_first_one_decides() -> None:
    h = Harness()
    h.result(result("req-1", PHONE, ("101",)), T0)
    first = h.report(report("101", PHONE, "undeliverable"), T0 + 1)
    later = h.report(report("101", PHONE, "delivered"), T0 + 2)
    assert statuses(later, "part")[0]["status"] == "delivered"
    assert statuses(later, "message") == statuses(first, "message")
    assert statuses(later, "message")[0]["status"] == "undeliverable"


def test_a_replayed_held_report_is_held_once() -> None:
    h = Harness()
    value = report("101", PHONE)
    h.report(value, T0)
    h.offset -= 1  # the same record again, as after a crash before the commit
    assert h.report(value, T0 + 1).held == 0
    assert h.correlator.held_count == 1


def test_one_recipient_of_several_and_recipients_sharing_an_id() -> None:
    h = Harness()
    doc = orjson.loads(result("req-M", PHONE, ("77",)))
    doc["recipients"].append(dict(doc["recipients"][0], phone="79009999999"))
    h.result(orjson.dumps(doc), T0)
    step = h.report(report("77", "79009999999"), T0 + 1)
    [message] = statuses(step, "message")
    assert (message["request_id"], message["phone"]) == ("req-M", "79009999999")
    assert h.correlator.part_count == 2


def test_bad_input_is_dead_lettered_with_its_reason() -> None:
    h = Harness()
    assert dead_letters(h.result(b"{not json", T0))[0]["reason"]["code"] == "invalid_json"
    doc = orjson.loads(report("1", PHONE))
    doc["phone"] = ""
    step = h.report(orjson.dumps(doc), T0)
    assert dead_letters(step)[0]["reason"]["code"] == "invalid_phone"


def test_results_without_accepted_recipients_route_nothing() -> None:
    h = Harness()
    doc = orjson.loads(result("req-1", PHONE, ("1",)))
    doc["recipients"][0] |= {"status": "rejected", "message_ids": [], "parts": 0}
    assert h.result(orjson.dumps(doc), T0).outbound == []
    assert h.parts.data == {}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["delivered", "delivered"], "delivered"),
        (["delivered", None], "unknown"),
        ([None, "expired", "undeliverable"], "expired"),
        (["rejected", "delivered"], "rejected"),
    ],
)
def test_overall_status_rule(parts: list[str | None], expected: str) -> None:
    assert overall_status(parts) == expected


def test_settings_problems_are_reported_together() -> None:
    from gateway.settings.correlator import CorrelatorSettings  # noqa: PLC0415

    bad = CorrelatorSettings(store="redis", hold_seconds=0, entry_ttl_seconds=0)
    assert len(bad.problems()) == 4
    assert CorrelatorSettings().problems() == []
    assert JoinSettings(1, 2, 3).hold_seconds == 1


def test_a_result_replayed_over_its_own_table_changes_joins_its_held_reports_again() -> None:
    """A worker killed after the tables took a result's step (its RocksDB, or the changelog a
    new owner recovers from) but before Kafka had its statuses processes the result again
    over tables that already hold its parts: the reports it released come out again, the
    same events."""
    h = Harness()
    h.report(report("101", PHONE, when=T0 + 1), T0 + 1)
    h.report(report("102", PHONE, "undeliverable", when=T0 + 2), T0 + 2)
    value = result("req-L", PHONE, ("101", "102"), T0)
    first = h.result(value, T0 + 3)
    assert len(statuses(first, "part")) == 2
    assert len(statuses(first, "message")) == 1
    again = h.restart(T0 + 20).result(value, T0 + 20)
    assert _by_event_id(again) == _by_event_id(first)


def _by_event_id(step: Step) -> dict[str, dict[str, object]]:
    """The events as a consumer deduplicating by ``event_id`` keeps them."""
    return {o.document["event_id"]: o.document for o in step.outbound}


def test_reports_joined_on_their_result_leave_the_held_table_a_hold_later_silently() -> None:
    h = Harness()
    h.report(report("101", PHONE, when=T0 + 1), T0 + 1)
    h.result(result("req-1", PHONE, ("101",)), T0 + 2)
    assert h.correlator.held_count == 0
    assert h.tick(T0 + 2 + 59).outbound == []
    assert h.held.data != {}  # a replay of the result within the hold joins them again
    restarted = h.restart(T0 + 30)
    assert restarted.correlator.held_count == 0
    assert restarted.tick(T0 + 30 + 61).outbound == []
    assert h.held.data == {}
    assert restarted.report(report("101", PHONE), T0 + 100).joined == 1
