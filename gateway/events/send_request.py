"""``smsc.send-request/1``: what client services put on the send topics.

Parsing is strict and total: any bytes give either a :class:`SendRequest` or an
:class:`InvalidRequest` with a machine-readable reason code, never an exception of another
kind. The JSON Schema ``schemas/send-request.v1.json`` says the same thing for other tools;
a test keeps the two in agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from gateway.settings.sender import Transport
from gateway.slots import slot_setters

SCHEMA = "smsc.send-request/1"
CHANNELS = frozenset(
    {"sms", "flash", "viber", "call", "mail", "telegram_code", "telegram_bot", "hlr", "ping"}
    | {"social"}
)
TRANSPORTS = frozenset(Transport)
MAX_RECIPIENTS = 1000
MAX_TEXT_CHARS = 10000
MAX_REQUEST_ID = 128
# The raw form the schema allows, and the digits it must come down to.
_RAW_PHONE = re.compile(r"\+?[0-9 ()\-]{5,30}")
_PHONE = re.compile(r"\+?[0-9]{5,20}")
_SENDER_ID = re.compile(r"(?:[0-9+]{1,20}|[A-Za-z0-9 ._\-&!]{1,11})")
_TAG_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_KNOWN = frozenset(
    {
        "schema",
        "event_id",
        "occurred_at",
        "request_id",
        "recipients",
        "text",
        "sender_id",
        "channel",
        "transport",
        "validity_seconds",
        "schedule_at",
        "comment",
        "provider_options",
        "tags",
        "registered_delivery",
    }
)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A validated send request; phone numbers are digits only (E.164 without ``+``)."""

    request_id: str
    recipients: tuple[str, ...]
    text: str
    sender_id: str | None = None
    channel: str = "sms"
    transport: Transport = Transport.AUTO
    validity_seconds: int | None = None
    schedule_at: datetime | None = None
    comment: str | None = None
    registered_delivery: bool = True
    provider_options: MappingProxyType[str, Any] = field(
        default_factory=lambda: MappingProxyType({})
    )
    tags: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class InvalidRequest:
    """Why a send request was refused; ``request_id`` when it could be read."""

    code: str
    message: str
    request_id: str | None = None


class _FieldError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_send_request(raw: bytes | None) -> SendRequest | InvalidRequest:
    """Read and validate one send request from a Kafka record value."""
    if raw is None:
        return InvalidRequest("empty_value", "record has no value (tombstone)")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return InvalidRequest("invalid_json", f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return InvalidRequest("invalid_json", "the request is not a JSON object")
    try:
        return _build(doc)
    except _FieldError as exc:
        request_id = doc.get("request_id")
        readable_id = (
            request_id
            if isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID
            else None
        )
        return InvalidRequest(exc.code, str(exc), readable_id)


def _build(doc: dict[str, Any]) -> SendRequest:
    if doc.get("schema") != SCHEMA:
        raise _FieldError("unsupported_schema", f"schema must be {SCHEMA!r}")
    # Most requests give no optional field past the sender id and the report flag: the
    # rest need no look-up (each default is what its reader below gives for "absent").
    usual = _USUAL.issuperset(doc)
    if not usual and not _KNOWN.issuperset(doc):
        unknown = sorted(set(doc) - _KNOWN)
        raise _FieldError("unknown_field", f"unknown fields: {', '.join(unknown)}")
    _envelope_fields(doc)
    request_id = doc.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise _FieldError("invalid_request_id", f"request_id must be 1-{MAX_REQUEST_ID} characters")
    recipients = _recipients(doc.get("recipients"))
    text = _text(doc.get("text"))
    if usual:
        return _usual_request(
            request_id,
            recipients,
            text,
            _optional_str(doc, "sender_id", _SENDER_ID, "invalid_sender_id"),
            _bool(doc, "registered_delivery", default=True),
        )
    return SendRequest(
        request_id=request_id,
        recipients=recipients,
        text=text,
        sender_id=_optional_str(doc, "sender_id", _SENDER_ID, "invalid_sender_id"),
        channel=_choice(doc, "channel", CHANNELS, "sms"),
        transport=_TRANSPORT_OF[_choice(doc, "transport", TRANSPORTS, Transport.AUTO)],
        validity_seconds=_validity(doc.get("validity_seconds")),
        schedule_at=_schedule(doc.get("schedule_at")),
        comment=_comment(doc.get("comment")),
        registered_delivery=_bool(doc, "registered_delivery", default=True),
        provider_options=_read_only(_object(doc, "provider_options")),
        tags=_read_only(_tags(doc.get("tags"))),
    )


# The fields of the usual request: with no other, every other field takes its default.
_USUAL = frozenset(
    {"schema", "event_id", "occurred_at", "request_id", "recipients", "text", "sender_id"}
    | {"registered_delivery"}
)
if not _USUAL <= _KNOWN:
    raise ImportError("a field of the usual request is not a known field")
# Each transport by its value, without the enum's call machinery.
_TRANSPORT_OF: dict[str, Transport] = {transport.value: transport for transport in Transport}


# Most requests have no options and no tags: they share this one empty mapping.
_EMPTY: MappingProxyType[str, Any] = MappingProxyType({})

# The usual request is built by setting its slots, in this order: the frozen dataclass's
# __init__ (keywords bound, then an object.__setattr__ per field) took twice as long. The
# import fails if SendRequest's fields change; the tests hold the result equal to the
# general way's SendRequest(...).
_FIELDS = (
    "request_id",
    "recipients",
    "text",
    "sender_id",
    "channel",
    "transport",
    "validity_seconds",
    "schedule_at",
    "comment",
    "registered_delivery",
    "provider_options",
    "tags",
)
if tuple(f.name for f in fields(SendRequest)) != _FIELDS:
    raise ImportError("_usual_request no longer sets every field of SendRequest")
(
    _set_request_id,
    _set_recipients,
    _set_text,
    _set_sender_id,
    _set_channel,
    _set_transport,
    _set_validity_seconds,
    _set_schedule_at,
    _set_comment,
    _set_registered_delivery,
    _set_provider_options,
    _set_tags,
) = slot_setters(SendRequest, _FIELDS)
_AUTO = Transport.AUTO


def _usual_request(
    request_id: str,
    recipients: tuple[str, ...],
    text: str,
    sender_id: str | None,
    registered_delivery: bool,
) -> SendRequest:
    """``SendRequest(request_id, recipients, text, sender_id, registered_delivery=...)`` with
    every other field its default (options and tags the shared empty mapping)."""
    request: SendRequest = object.__new__(SendRequest)
    _set_request_id(request, request_id)
    _set_recipients(request, recipients)
    _set_text(request, text)
    _set_sender_id(request, sender_id)
    _set_channel(request, "sms")
    _set_transport(request, _AUTO)
    _set_validity_seconds(request, None)
    _set_schedule_at(request, None)
    _set_comment(request, None)
    _set_registered_delivery(request, registered_delivery)
    _set_provider_options(request, _EMPTY)
    _set_tags(request, _EMPTY)
    return request


def _read_only(value: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(value) if value else _EMPTY


def _envelope_fields(doc: dict[str, Any]) -> None:
    """``event_id`` and ``occurred_at`` are optional in a request, but well-formed if given."""
    event_id = doc.get("event_id")
    if event_id is not None and not (isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)):
        raise _FieldError("invalid_event_id", "event_id must be a lower-case UUID")
    if doc.get("occurred_at") is not None:
        _timestamp(doc["occurred_at"], "occurred_at", "invalid_occurred_at")


def normalize_phone(value: str) -> str | None:
    """Digits of an international number, or ``None`` when it is not one."""
    if _PHONE.fullmatch(value):  # written plainly already, as most are
        return value.lstrip("+")
    if not _RAW_PHONE.fullmatch(value):
        return None
    compact = value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if not _PHONE.fullmatch(compact):
        return None
    return compact.lstrip("+")


def _recipients(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _FieldError("invalid_recipients", "recipients must be a non-empty array")
    if len(value) > MAX_RECIPIENTS:
        raise _FieldError("too_many_recipients", f"at most {MAX_RECIPIENTS} recipients")
    if len(value) == 1:  # as most requests have: nothing to remove as a repeat
        return (_phone(value[0]),)
    phones: list[str] = []
    for item in value:
        phone = _phone(item)
        if phone not in phones:
            phones.append(phone)
    return tuple(phones)


def _phone(item: object) -> str:
    phone = normalize_phone(item) if isinstance(item, str) else None
    if phone is None:
        raise _FieldError("invalid_phone", f"recipient {str(item)[:32]!r} is not a phone number")
    return phone


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _FieldError("invalid_text", "text must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise _FieldError("text_too_long", f"text longer than {MAX_TEXT_CHARS} characters")
    return value


def _optional_str(doc: dict[str, Any], key: str, pattern: re.Pattern[str], code: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _FieldError(code, f"{key} {str(value)[:32]!r} is not valid")
    return value


def _choice(doc: dict[str, Any], key: str, allowed: frozenset[str], default: str) -> str:
    value = _given(doc, key, default)
    if not isinstance(value, str) or value not in allowed:
        raise _FieldError(f"invalid_{key}", f"{key} must be one of {', '.join(sorted(allowed))}")
    return str(value)


def _validity(value: object) -> int | None:
    if value is None:
        return None
    # JSON has one number type: 600.0 is the integer 600, as JSON Schema counts it.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 86400 * 7:
        raise _FieldError("invalid_validity", "validity_seconds must be an integer 60..604800")
    return value


def _schedule(value: object) -> datetime | None:
    return None if value is None else _timestamp(value, "schedule_at", "invalid_schedule")


def _timestamp(value: object, key: str, code: str) -> datetime:
    """An RFC 3339 date-time with its offset, in exactly the form the schema allows, that
    exists in UTC too (``9999-12-31T23:59:59-14:00`` is past the last representable day)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise _FieldError(code, f"{key} must be an RFC 3339 date-time with an offset")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment.astimezone(UTC)
    except ValueError:
        raise _FieldError(code, f"{key} is not a valid date-time") from None
    except OverflowError:
        raise _FieldError(code, f"{key} is outside the years 1-9999 in UTC") from None
    return moment


def _comment(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 1000:
        raise _FieldError("invalid_comment", "comment must be a string of at most 1000 characters")
    return value


def _bool(doc: dict[str, Any], key: str, *, default: bool) -> bool:
    value = _given(doc, key, default)
    if not isinstance(value, bool):
        raise _FieldError(f"invalid_{key}", f"{key} must be true or false")
    return value


def _object(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = _given(doc, key, {})
    if not isinstance(value, dict):
        raise _FieldError(f"invalid_{key}", f"{key} must be an object")
    return value


def _given(doc: dict[str, Any], key: str, default: object) -> object:
    """The field's value; ``default`` when it is absent or ``null`` (null means not set)."""
    value = doc.get(key)
    return default if value is None else value


def _tags(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise _FieldError("invalid_tags", "tags must be an object of at most 32 entries")
    for key, item in value.items():
        if not _TAG_KEY.fullmatch(key) or not isinstance(item, str) or len(item) > 256:
            raise _FieldError("invalid_tags", f"tag {key[:64]!r} must map to a string of <= 256")
    return value
