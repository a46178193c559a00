"""Callbacks to events: every seed parameter lands in the event, names from the seeds'
tables, stable ids, and every event matches its JSON Schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.events.envelope import dumps, rfc3339, stable_event_id
from gateway.ingress.callback import parse_callback
from gateway.ingress.mapping import _MAX_TIMESTAMP, _moment, _stamp_text, callback_event
from gateway.ingress.params import CallbackRequest, Kind, Rejection
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import (
    HLR_PARAMS,
    INCOMING_PARAMS,
    STATUS_PARAMS,
    VOICE_PARAMS,
    WAITCALL_PARAMS,
    form,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def event_of(params: dict[str, str], query: bytes = b"") -> tuple[Kind, bytes, dict[str, Any]]:
    callback = parse_callback(CallbackRequest("POST", query, form(params)), "windows-1251")
    assert not isinstance(callback, Rejection), callback
    routed = callback_event(callback, NOW)
    validate_event(routed.event)
    return routed.kind, routed.key, routed.event


def test_status_event_has_every_parameter() -> None:
    params = {**STATUS_PARAMS, **HLR_PARAMS, **VOICE_PARAMS, "sha1": "ab" * 20}
    kind, key, event = event_of(params, b"tenant=north")
    assert (kind, key) == (Kind.STATUS, b"4711")
    assert event["schema"] == "smsc.dlr/1"
    assert event["source"] == "webhook"
    assert (event["message_id"], event["phone"]) == ("4711", "79991234567")
    assert (event["status"], event["final"], event["stat"]) == ("delivered", True, "1")
    assert (event["err"], event["err_name"]) == (245, "Status is not received")
    assert event["done_date"] == "01.02.24 10:11:12"
    assert event["occurred_at"] == "2024-02-01T10:11:12.000Z"  # from ts
    assert event["received_at"] == "2030-01-01T12:00:00.000Z"
    assert (event["cost"], event["parts"]) == ("3.90", 2)
    assert event["flags"] == {
        "message_type": "flash",
        "second_balance": True,
        "template": True,
        "template_type": "advertising",
    }
    assert event["hlr"] == HLR_PARAMS
    # Everything the provider sent (the GET extra too) is in raw, the signature is not.
    assert event["raw"] == {"tenant": "north", **STATUS_PARAMS, **HLR_PARAMS, **VOICE_PARAMS}


@pytest.mark.parametrize(
    ("status", "normalized", "final", "extra"),
    [
        ("-3", "unknown", True, None),
        ("-2", "accepted", False, None),
        ("-1", "accepted", False, None),
        ("0", "enroute", False, None),
        ("1", "delivered", True, None),
        ("2", "delivered", True, "read"),
        ("3", "expired", True, None),
        ("4", "delivered", True, "link_clicked"),
        ("20", "undeliverable", True, None),
        ("22", "rejected", True, None),
        ("23", "rejected", True, None),
        ("24", "rejected", True, None),
        ("25", "undeliverable", True, None),
        ("99", "unknown", False, None),
    ],
)
def test_numeric_statuses_are_normalized(
    status: str, normalized: str, final: bool, extra: str | None
) -> None:
    _, _, event = event_of({"id": "1", "phone": "7999", "status": status})
    assert (event["status"], event["final"], event["extra_status"]) == (normalized, final, extra)


def test_a_call_counts_seconds_not_parts_and_mail_errors_have_their_table() -> None:
    _, _, call = event_of({"id": "1", "phone": "7999", "status": "1", "type": "7", "cnt": "42"})
    assert call["parts"] is None
    assert call["raw"]["cnt"] == "42"
    _, _, mail = event_of({"id": "1", "phone": "a@b.c", "status": "20", "type": "8", "err": "2"})
    assert mail["err_name"] == "Crowded Inbox"
    _, _, sms = event_of({"id": "1", "phone": "7999", "status": "20", "err": "2"})
    assert sms["err_name"] is None  # not in the SMS table


def test_incoming_event_has_every_parameter() -> None:
    kind, key, event = event_of({**INCOMING_PARAMS, "extra": "x"})
    assert (kind, key) == (Kind.INCOMING, b"79991234567")
    assert event["schema"] == "smsc.incoming/1"
    assert (event["phone"], event["to"], event["text"]) == (
        "79991234567",
        "79000000001",
        INCOMING_PARAMS["mes"],
    )
    assert event["occurred_at"] == "2024-02-01T10:10:10.000Z"  # the provider's receive time
    assert "data_coding" not in event
    assert (event["incoming_id"], event["sms_id"]) == ("9001", "4711")  # a reply to message 4711
    assert event["raw"] == {**INCOMING_PARAMS, "extra": "x"}


def test_an_incoming_sms_keeps_the_event_id_it_had_before_polling_shared_it() -> None:
    # The id the webhook has always published for a numbered message (phone without "+").
    _, _, event = event_of({**INCOMING_PARAMS, "phone": "+79991234567"})
    expected = stable_event_id("smsc.incoming/1", "webhook", "id", "9001", "79991234567")
    assert event["event_id"] == expected
    _, _, unanswered = event_of({k: v for k, v in INCOMING_PARAMS.items() if k != "sms_id"})
    assert (unanswered["event_id"], unanswered["sms_id"]) == (expected, None)


def test_waitcall_event_has_every_parameter() -> None:
    kind, key, event = event_of({**WAITCALL_PARAMS, **VOICE_PARAMS})
    assert (kind, key) == (Kind.WAITCALL, b"79991234567")
    assert event["schema"] == "smsc.waitcall/1"
    assert (event["kind"], event["phone"], event["ts"]) == ("call", "79991234567", 1706782300)
    assert event["called_at"] == "2024-02-01T10:11:40.000Z"
    assert (event["calltime"], event["callmenu"], event["ringtime"]) == ("00:17", "1#2", "4")
    assert event["raw"] == {**WAITCALL_PARAMS, **VOICE_PARAMS}


@pytest.mark.parametrize(
    "params",
    [
        {**STATUS_PARAMS},
        {**INCOMING_PARAMS},
        {"phone": "7999", "mes": "no id", "to": "1", "time": "1706782210"},
        {**WAITCALL_PARAMS},
    ],
)
def test_a_repeat_gets_the_same_event_id_and_the_same_bytes(params: dict[str, str]) -> None:
    _, _, first = event_of(params)
    _, _, again = event_of(params)
    assert first["event_id"] == again["event_id"]
    assert dumps(first) == dumps(again)


def test_a_new_fact_gets_a_new_event_id() -> None:
    base = {"id": "1", "phone": "7999", "status": "0", "time": "01.02.24 10:00:00"}
    _, _, sent = event_of(base)
    _, _, delivered = event_of({**base, "status": "1", "time": "01.02.24 10:00:05"})
    _, _, other_phone = event_of({**base, "phone": "7998"})
    assert len({sent["event_id"], delivered["event_id"], other_phone["event_id"]}) == 3
    _, _, text1 = event_of({"phone": "7", "mes": "a", "to": "1"})
    _, _, text2 = event_of({"phone": "7", "mes": "b", "to": "1"})
    assert text1["event_id"] != text2["event_id"]


@given(st.integers(min_value=-10, max_value=_MAX_TIMESTAMP + 10))
def test_a_status_time_reads_as_rfc3339_of_its_moment(stamp: int) -> None:
    # The time of day is formatted from the seconds, the day once per day: the same text
    # as rfc3339 of the moment, and none for a time stamp out of range.
    moment = _moment(stamp)
    assert _stamp_text(stamp) == (rfc3339(moment) if moment is not None else None)


def test_a_status_occurs_at_its_time_stamp_and_is_received_now() -> None:
    kind, _, event = event_of({**STATUS_PARAMS, "ts": "1700000000"})
    assert kind is Kind.STATUS
    assert event["occurred_at"] == "2023-11-14T22:13:20.000Z"
    assert event["received_at"] == rfc3339(NOW)
