"""``smsc.call-confirm/1`` parsing: strict, total, and in agreement with its JSON Schema."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.events.call_confirm import (
    CallConfirmRequest,
    InvalidCallConfirm,
    parse_call_confirm,
)
from tests.eventcheck import is_valid

SCHEMA = "smsc.call-confirm/1"
VALID = {"schema": SCHEMA, "request_id": "login-77", "phone": "+7 (900) 123-45-67"}


def parse(doc: dict[str, Any]) -> CallConfirmRequest | InvalidCallConfirm:
    return parse_call_confirm(orjson.dumps(doc))


def test_a_valid_request_keeps_its_fields_and_phone_digits() -> None:
    doc = VALID | {"tags": {"user": "u-1"}, "event_id": None, "occurred_at": "2030-01-01T00:00:00Z"}
    parsed = parse(doc)
    assert isinstance(parsed, CallConfirmRequest)
    assert (parsed.request_id, parsed.phone) == ("login-77", "79001234567")
    assert dict(parsed.tags) == {"user": "u-1"}
    assert is_valid(doc, SCHEMA)


@pytest.mark.parametrize(
    ("code", "doc"),
    [
        ("unsupported_schema", VALID | {"schema": "smsc.send-request/1"}),
        ("unknown_field", VALID | {"text": "hi"}),
        ("invalid_request_id", VALID | {"request_id": ""}),
        ("invalid_request_id", VALID | {"request_id": "x" * 129}),
        ("invalid_phone", VALID | {"phone": "12"}),
        ("invalid_phone", VALID | {"phone": 79001234567}),
        ("invalid_tags", VALID | {"tags": {"user": 7}}),
        ("invalid_tags", VALID | {"tags": {"bad key": "x"}}),
        ("invalid_event_id", VALID | {"event_id": "not-a-uuid"}),
        ("invalid_occurred_at", VALID | {"occurred_at": "yesterday"}),
    ],
)
def test_invalid_requests_are_refused_by_parser_and_schema(code: str, doc: dict[str, Any]) -> None:
    parsed = parse(doc)
    assert isinstance(parsed, InvalidCallConfirm)
    assert parsed.code == code
    assert not is_valid(doc, SCHEMA)


def test_request_id_and_phone_are_kept_when_readable() -> None:
    parsed = parse(VALID | {"tags": []})
    assert isinstance(parsed, InvalidCallConfirm)
    assert (parsed.code, parsed.request_id, parsed.phone) == (
        "invalid_tags",
        "login-77",
        "79001234567",
    )


@pytest.mark.parametrize(
    ("raw", "code"), [(None, "empty_value"), (b"{", "invalid_json"), (b"[1]", "invalid_json")]
)
def test_what_is_not_a_request_object(raw: bytes | None, code: str) -> None:
    parsed = parse_call_confirm(raw)
    assert isinstance(parsed, InvalidCallConfirm)
    assert parsed.code == code


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_call_confirm(raw), CallConfirmRequest | InvalidCallConfirm)


@given(
    request_id=st.text(min_size=1, max_size=128),
    phone=st.from_regex(r"\+?[0-9]{5,20}", fullmatch=True),
    tags=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True), st.text(max_size=256), max_size=5
    ),
)
def test_valid_documents_are_accepted_by_both(
    request_id: str, phone: str, tags: dict[str, str]
) -> None:
    doc = {"schema": SCHEMA, "request_id": request_id, "phone": phone, "tags": tags}
    assert is_valid(doc, SCHEMA)
    assert isinstance(parse(doc), CallConfirmRequest)
