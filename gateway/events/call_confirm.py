"""``smsc.call-confirm/1``: a client service asks to confirm a phone by the subscriber's call.

Parsing is total, as for send requests: any bytes give a :class:`CallConfirmRequest` or an
:class:`InvalidCallConfirm` with a reason code (``empty_value``, ``invalid_json``,
``unsupported_schema``, ``unknown_field``, ``invalid_request_id``, ``invalid_phone``,
``invalid_tags``, ``invalid_event_id``, ``invalid_occurred_at``). The JSON Schema
``schemas/call-confirm.v1.json`` says the same; a test keeps them in agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from .send_request import MAX_REQUEST_ID, normalize_phone

SCHEMA = "smsc.call-confirm/1"
_KNOWN = frozenset({"schema", "event_id", "occurred_at", "request_id", "phone", "tags"})
_TAG_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class CallConfirmRequest:
    """A valid request; the phone is digits only (E.164 without ``+``)."""

    request_id: str
    phone: str
    tags: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class InvalidCallConfirm:
    """Why a request was refused; its ``request_id`` and phone when they could be read."""

    code: str
    message: str
    request_id: str | None = None
    phone: str | None = None


class _FieldError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_call_confirm(raw: bytes | None) -> CallConfirmRequest | InvalidCallConfirm:
    """Read and validate one request from a Kafka record value."""
    if raw is None:
        return InvalidCallConfirm("empty_value", "record has no value (tombstone)")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return InvalidCallConfirm("invalid_json", f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return InvalidCallConfirm("invalid_json", "the request is not a JSON object")
    request_id, phone = doc.get("request_id"), doc.get("phone")
    readable_id = request_id if _valid_request_id(request_id) else None
    readable_phone = normalize_phone(phone) if isinstance(phone, str) else None
    try:
        return _build(doc)
    except _FieldError as exc:
        return InvalidCallConfirm(exc.code, str(exc), readable_id, readable_phone)


def _build(doc: dict[str, Any]) -> CallConfirmRequest:
    if doc.get("schema") != SCHEMA:
        raise _FieldError("unsupported_schema", f"schema must be {SCHEMA!r}")
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise _FieldError("unknown_field", f"unknown fields: {', '.join(unknown)}")
    event_id = doc.get("event_id")
    if event_id is not None and not (isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)):
        raise _FieldError("invalid_event_id", "event_id must be a lower-case UUID")
    occurred_at = doc.get("occurred_at")
    if occurred_at is not None and not (
        isinstance(occurred_at, str) and _RFC3339.fullmatch(occurred_at)
    ):
        raise _FieldError("invalid_occurred_at", "occurred_at must be an RFC 3339 date-time")
    if not _valid_request_id(doc.get("request_id")):
        raise _FieldError("invalid_request_id", f"request_id must be 1-{MAX_REQUEST_ID} characters")
    phone = doc.get("phone")
    digits = normalize_phone(phone) if isinstance(phone, str) else None
    if digits is None:
        raise _FieldError("invalid_phone", f"phone {str(phone)[:32]!r} is not a phone number")
    return CallConfirmRequest(doc["request_id"], digits, MappingProxyType(_tags(doc.get("tags"))))


def _valid_request_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID


def _tags(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise _FieldError("invalid_tags", "tags must be an object of at most 32 entries")
    for key, item in value.items():
        if not _TAG_KEY.fullmatch(key) or not isinstance(item, str) or len(item) > 256:
            raise _FieldError("invalid_tags", f"tag {key[:64]!r} must map to a string of <= 256")
    return value
