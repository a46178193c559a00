"""Event builders: every event matches its JSON Schema and carries a stable ``event_id``."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events.dead_letter import COPY_LIMIT_BYTES, Origin, dead_letter_event, dead_letter_key
from gateway.events.delivery import DeliveryReport, IncomingMessage, dlr_event, incoming_event
from gateway.events.envelope import dumps, envelope, rfc3339, stable_event_id
from gateway.events.send_result import (
    OUTCOMES,
    ErrorInfo,
    RecipientOutcome,
    overall_outcome,
    send_result_event,
)
from tests.eventcheck import validate_event

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
T1 = T0 + timedelta(seconds=2)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def roundtrip(event: dict[str, Any]) -> dict[str, Any]:
    """What a consumer reads: the event through the wire format, validated."""
    decoded: dict[str, Any] = orjson.loads(dumps(event))
    validate_event(decoded)
    return decoded


# -- envelope ------------------------------------------------------------------------------


def test_rfc3339_is_utc_with_milliseconds_and_z() -> None:
    assert rfc3339(T0) == "2030-01-02T03:04:05.678Z"
    moscow = timezone(timedelta(hours=3))
    assert rfc3339(datetime(2030, 1, 2, 6, 4, 5, tzinfo=moscow)) == "2030-01-02T03:04:05.000Z"


def test_stable_event_id_is_a_uuid5_of_its_parts() -> None:
    first = stable_event_id("a", 1, None)
    assert UUID.match(first)
    assert first == stable_event_id("a", 1, None)
    assert first != stable_event_id("a", 2, None)
    assert envelope("x/1", first, T0) == {
        "schema": "x/1",
        "event_id": first,
        "occurred_at": "2030-01-02T03:04:05.678Z",
    }


# -- send results --------------------------------------------------------------------------

ACCEPTED = RecipientOutcome("79991234567", "accepted", ("1001",))
REJECTED = RecipientOutcome(
    "79990000001", "rejected", error=ErrorInfo("esme_rinvdstadr", "bad address", 0x0B)
)
FAILED = RecipientOutcome("79990000002", "failed", error=ErrorInfo("retries_exhausted", "down"))


def result(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "outcome": "accepted",
        "occurred_at": T1,
        "received_at": T0,
        "transport": "smpp",
        "recipients": [ACCEPTED],
    }
    fields.update(overrides)
    return send_result_event(**fields)


def test_accepted_result_matches_schema_and_carries_everything() -> None:
    event = roundtrip(result(recipients=[ACCEPTED, REJECTED], tags={"order": "17"}, attempts=3))
    assert event["schema"] == "smsc.send-result/1"
    assert event["request_id"] == "req-1"
    assert event["outcome"] == "accepted"
    assert event["occurred_at"] == "2030-01-02T03:04:07.678Z"
    assert event["received_at"] == "2030-01-02T03:04:05.678Z"
    assert event["attempts"] == 3
    assert event["tags"] == {"order": "17"}
    assert event["recipients"] == [
        {"phone": "79991234567", "status": "accepted", "message_ids": ["1001"], "parts": 1},
        {
            "phone": "79990000001",
            "status": "rejected",
            "message_ids": [],
            "parts": 0,
            "error": {"code": "esme_rinvdstadr", "message": "bad address", "command_status": 11},
        },
    ]
    assert "error" not in event


@pytest.mark.parametrize("outcome", sorted(OUTCOMES - {"accepted"}))
def test_unsuccessful_outcomes_with_an_error_match_schema(outcome: str) -> None:
    event = roundtrip(
        result(outcome=outcome, recipients=[], transport="none", error=ErrorInfo("why", "because"))
    )
    assert event["error"] == {"code": "why", "message": "because"}
    assert event["recipients"] == []
    assert event["tags"] == {}


def test_rejected_without_error_or_recipients_breaks_the_schema() -> None:
    # The schema's if/then: a result that is not accepted says why, somewhere.
    from jsonschema import ValidationError  # noqa: PLC0415

    with pytest.raises(ValidationError):
        validate_event(result(outcome="rejected", recipients=[], transport="none"))


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        result(outcome="sent")


def test_result_event_id_depends_on_the_request_only() -> None:
    first = result()
    again = result(occurred_at=T1 + timedelta(hours=1), outcome="failed", attempts=9)
    other = result(request_id="req-2")
    assert first["event_id"] == again["event_id"]
    assert first["event_id"] != other["event_id"]
    assert UUID.match(first["event_id"])


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["accepted"], "accepted"),
        (["rejected"], "rejected"),
        (["failed"], "failed"),
        (["accepted", "rejected"], "accepted"),
        (["rejected", "failed", "accepted"], "accepted"),
        (["rejected", "failed"], "failed"),
        (["rejected", "rejected"], "rejected"),
    ],
)
def test_overall_outcome(statuses: list[str], expected: str) -> None:
    recipients = [RecipientOutcome(f"7999000000{n}", s) for n, s in enumerate(statuses)]
    assert overall_outcome(recipients) == expected


@given(st.lists(st.sampled_from(["accepted", "rejected", "failed"]), min_size=1, max_size=8))
def test_overall_outcome_rules(statuses: list[str]) -> None:
    outcome = overall_outcome([RecipientOutcome("79990000000", s) for s in statuses])
    if "accepted" in statuses:
        assert outcome == "accepted"
    elif "failed" in statuses:
        assert outcome == "failed"
    else:
        assert outcome == "rejected"


# -- dead letters --------------------------------------------------------------------------


def test_kafka_dead_letter_keeps_bytes_and_reason() -> None:
    origin = Origin("kafka", "smsc.send.v1", 2, 41)
    event = roundtrip(
        dead_letter_event(
            role="sender",
            origin=origin,
            reason_code="invalid_json",
            reason="not JSON",
            key=b"\x00key",
            value=b"\xff{garbage",
            occurred_at=T0,
        )
    )
    assert event["role"] == "sender"
    assert event["origin"] == {
        "kind": "kafka",
        "topic": "smsc.send.v1",
        "partition": 2,
        "offset": 41,
    }
    assert event["reason"] == {"code": "invalid_json", "message": "not JSON"}
    assert base64.b64decode(event["key_base64"]) == b"\x00key"
    assert base64.b64decode(event["value_base64"]) == b"\xff{garbage"


def test_dead_letter_of_a_large_record_fits_and_says_what_it_left_out() -> None:
    key, value = b"k" * (512 * 1024), bytes(range(256)) * 4096  # 512 KiB key, 1 MiB value
    event = roundtrip(
        dead_letter_event(
            role="sender",
            origin=Origin("kafka", "smsc.send.v1", 1, 7),
            reason_code="invalid_json",
            reason="not JSON: " + "x" * 5000,
            key=key,
            value=value,
            occurred_at=T0,
        )
    )
    assert len(dumps(event)) < 200 * 1024
    assert base64.b64decode(event["key_base64"]) == key[:COPY_LIMIT_BYTES]
    assert base64.b64decode(event["value_base64"]) == value[:COPY_LIMIT_BYTES]
    assert (event["key_size"], event["value_size"]) == (len(key), len(value))
    assert event["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert event["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert event["truncated"] is True
    assert event["origin"] == {
        "kind": "kafka",
        "topic": "smsc.send.v1",
        "partition": 1,
        "offset": 7,
    }
    assert len(event["reason"]["message"]) < 1100
    assert event["reason"]["message"].endswith("(4010 more characters)")


@pytest.mark.parametrize("size", [0, 1, COPY_LIMIT_BYTES, COPY_LIMIT_BYTES + 1])
def test_dead_letter_copies_up_to_the_limit_whole(size: int) -> None:
    value = b"v" * size
    event = roundtrip(
        dead_letter_event(
            role="sender",
            origin=Origin("kafka", "t", 0, 0),
            reason_code="x",
            reason="y",
            key=None,
            value=value,
            occurred_at=T0,
        )
    )
    assert event["truncated"] is (size > COPY_LIMIT_BYTES)
    assert base64.b64decode(event["value_base64"]) == value[:COPY_LIMIT_BYTES]
    assert event["value_size"] == size
    assert event["key_size"] is None
    assert event["key_sha256"] is None


def test_dead_letter_key_is_the_original_unless_too_long() -> None:
    assert dead_letter_key(None) is None
    assert dead_letter_key(b"79161234567") == b"79161234567"
    assert dead_letter_key(b"k" * COPY_LIMIT_BYTES) == b"k" * COPY_LIMIT_BYTES
    long_key = b"k" * (COPY_LIMIT_BYTES + 1)
    assert dead_letter_key(long_key) == b"sha256:" + hashlib.sha256(long_key).hexdigest().encode()


def test_an_error_message_is_bounded_in_a_result() -> None:
    event = roundtrip(
        send_result_event(
            request_id="r1",
            outcome="rejected",
            occurred_at=T1,
            received_at=T0,
            transport="none",
            error=ErrorInfo("unknown_field", "unknown fields: " + "f" * 900_000),
        )
    )
    assert len(dumps(event)) < 2000
    assert event["error"]["message"].startswith("unknown fields: fff")


def test_dead_letter_of_a_tombstone_has_null_bytes() -> None:
    event = roundtrip(
        dead_letter_event(
            role="sender",
            origin=Origin("kafka", "t", 0, 0),
            reason_code="empty_value",
            reason="tombstone",
            key=None,
            value=None,
            occurred_at=T0,
        )
    )
    assert event["key_base64"] is None
    assert event["value_base64"] is None


def test_kafka_dead_letter_id_is_its_record_position() -> None:
    def make(topic: str, partition: int, offset: int, value: bytes, at: datetime) -> str:
        event = dead_letter_event(
            role="sender",
            origin=Origin("kafka", topic, partition, offset),
            reason_code="x",
            reason="y",
            key=None,
            value=value,
            occurred_at=at,
        )
        return str(event["event_id"])

    first = make("t", 0, 5, b"a", T0)
    assert first == make("t", 0, 5, b"b", T1)
    assert first != make("t", 0, 6, b"a", T0)
    assert first != make("t", 1, 5, b"a", T0)
    assert first != make("u", 0, 5, b"a", T0)


def test_smpp_dead_letter_matches_schema() -> None:
    event = roundtrip(
        dead_letter_event(
            role="sender",
            origin=Origin("smpp", detail="deliver_sm"),
            reason_code="invalid_receipt",
            reason="no id",
            key=None,
            value=b"\x00\x00\x00\x10",
            occurred_at=T0,
        )
    )
    assert event["origin"] == {"kind": "smpp", "detail": "deliver_sm"}


# -- delivery reports and incoming SMS ------------------------------------------------------


def report(**overrides: Any) -> DeliveryReport:
    fields: dict[str, Any] = {
        "source": "smpp",
        "message_id": "854019",
        "phone": "79991234567",
        "status": "delivered",
        "final": True,
        "stat": "DELIVRD",
        "received_at": T1,
        "err": 0,
        "err_name": "No error",
        "done_at": T0,
        "submit_date": "1108202241",
        "done_date": "1108202241",
        "sub": 1,
        "dlvrd": 1,
        "cost": "1.95",
        "parts": 1,
        "mccmnc": "25001",
        "message_state": 2,
        "network_error_code": "030000",
        "flags": {
            "message_type": "sms",
            "second_balance": False,
            "template": True,
            "template_type": "service",
        },
        "extra_status": "read",
        "hlr": None,
        "raw": {"text": "id:854019 ..."},
    }
    fields.update(overrides)
    return DeliveryReport(**fields)


def test_dlr_event_matches_schema_and_keeps_raw_fields() -> None:
    event = roundtrip(dlr_event(report()))
    assert event["schema"] == "smsc.dlr/1"
    assert event["occurred_at"] == rfc3339(T0)  # when the status changed
    assert event["received_at"] == rfc3339(T1)
    assert event["err_name"] == "No error"
    assert event["flags"]["template_type"] == "service"
    assert event["raw"] == {"text": "id:854019 ..."}


def test_dlr_event_without_optional_fields_matches_schema() -> None:
    bare = DeliveryReport(
        source="webhook",
        message_id="1",
        phone="79991234567",
        status="unknown",
        final=False,
        stat="UNKNOWN",
        received_at=T1,
    )
    event = roundtrip(dlr_event(bare))
    assert event["occurred_at"] == rfc3339(T1)  # no done time: when it was received
    assert event["err"] is None


def test_hlr_dlr_matches_schema() -> None:
    hlr = {"imsi": "250023012345678", "msc": "79232510066", "mcc": "250", "mnc": "02"}
    hlr |= {"cn": "Russian Federation", "net": "MegaFON", "rcn": "", "rnet": ""}
    assert roundtrip(dlr_event(report(hlr=hlr)))["hlr"] == hlr


def test_dlr_event_id_is_stable_for_repeats_and_new_for_a_new_status() -> None:
    first = dlr_event(report())["event_id"]
    repeat = dlr_event(report(received_at=T1 + timedelta(minutes=5), cost="2.00"))["event_id"]
    assert first == repeat
    assert first != dlr_event(report(stat="UNDELIV", status="undeliverable"))["event_id"]
    assert first != dlr_event(report(err=1))["event_id"]
    assert first != dlr_event(report(message_id="854020"))["event_id"]
    assert first != dlr_event(report(phone="79990000000"))["event_id"]
    assert first != dlr_event(report(extra_status="link_clicked"))["event_id"]
    assert first != dlr_event(report(done_date="1108202242"))["event_id"]


def message(**overrides: Any) -> IncomingMessage:
    fields: dict[str, Any] = {
        "source": "smpp",
        "phone": "79991234567",
        "to": "4567",
        "text": "Привет",
        "received_at": T0,
        "data_coding": 8,
        "identity": ("+79991234567", "4567", 0, "digest"),
        "raw": {"short_message_hex": "041f"},
    }
    fields.update(overrides)
    return IncomingMessage(**fields)


def test_incoming_event_matches_schema() -> None:
    event = roundtrip(incoming_event(message()))
    assert event["schema"] == "smsc.incoming/1"
    assert event["phone"] == "79991234567"
    assert event["to"] == "4567"
    assert event["text"] == "Привет"
    assert event["data_coding"] == 8
    assert event["occurred_at"] == rfc3339(T0)


def test_incoming_event_id_follows_identity_and_source() -> None:
    first = incoming_event(message())["event_id"]
    assert first == incoming_event(message(received_at=T1))["event_id"]
    assert first != incoming_event(message(identity=("x",)))["event_id"]
    assert first != incoming_event(message(source="webhook"))["event_id"]


def test_a_numbered_incoming_sms_has_one_event_id_whichever_way_it_came() -> None:
    numbered = {"incoming_id": "9001", "data_coding": None, "identity": ()}
    by_webhook = roundtrip(incoming_event(message(source="webhook", sms_id="4711", **numbered)))
    by_poll = roundtrip(incoming_event(message(source="poll", received_at=T1, **numbered)))
    assert by_webhook["event_id"] == by_poll["event_id"]
    assert (by_poll["incoming_id"], by_poll["sms_id"], by_webhook["sms_id"]) == (
        "9001",
        None,
        "4711",
    )
    other = incoming_event(message(source="poll", **(numbered | {"incoming_id": "9002"})))
    assert other["event_id"] != by_poll["event_id"]


@settings(deadline=None)
@given(
    request_id=st.text(min_size=1, max_size=128),
    phones=st.lists(st.from_regex(r"[0-9]{5,20}", fullmatch=True), min_size=1, max_size=4),
    statuses=st.lists(st.sampled_from(["accepted", "rejected", "failed"]), min_size=4),
    tags=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True), st.text(max_size=256), max_size=5
    ),
)
def test_any_result_the_sender_builds_matches_schema(
    request_id: str, phones: list[str], statuses: list[str], tags: dict[str, str]
) -> None:
    recipients = [
        RecipientOutcome(p, s, ("1",))
        if s == "accepted"
        else RecipientOutcome(p, s, error=ErrorInfo("e", "m", 8))
        for p, s in zip(phones, statuses, strict=False)
    ]
    event = result(
        request_id=request_id,
        outcome=overall_outcome(recipients),
        recipients=recipients,
        tags=tags,
    )
    roundtrip(event)
