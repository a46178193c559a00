"""``smsc.send-request/1`` parsing: strict, total, and in agreement with its JSON Schema.

Every reason code is reached by a document that the schema refuses as well; hypothesis builds
valid requests (which both accept) and arbitrary bytes or mutated documents (which the parser
answers with a SendRequest or an InvalidRequest, never an exception).
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events.send_request import (
    CHANNELS,
    MAX_RECIPIENTS,
    MAX_REQUEST_ID,
    MAX_TEXT_CHARS,
    SCHEMA,
    TRANSPORTS,
    InvalidRequest,
    SendRequest,
    normalize_phone,
    parse_send_request,
)
from gateway.settings import Transport
from tests.eventcheck import is_valid, validate_event

REQUEST_SCHEMA = "smsc.send-request/1"


def minimal(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "request_id": "req-1",
        "recipients": ["+79991234567"],
        "text": "Hello",
    }
    doc.update(fields)
    return doc


def parse(doc: Any) -> SendRequest | InvalidRequest:
    return parse_send_request(orjson.dumps(doc))


def accepted(doc: dict[str, Any]) -> SendRequest:
    parsed = parse(doc)
    assert isinstance(parsed, SendRequest), parsed
    validate_event(doc)
    return parsed


def refused(doc: Any, code: str) -> InvalidRequest:
    parsed = parse(doc)
    assert isinstance(parsed, InvalidRequest), parsed
    assert parsed.code == code, parsed
    assert parsed.message
    return parsed


# -- valid requests ------------------------------------------------------------------------


def test_minimal_request_gets_the_defaults() -> None:
    request = accepted(minimal())
    assert request == SendRequest(request_id="req-1", recipients=("79991234567",), text="Hello")
    assert request.channel == "sms"
    assert request.transport == "auto"
    assert request.registered_delivery is True
    assert request.sender_id is None
    assert request.validity_seconds is None
    assert request.schedule_at is None
    assert request.comment is None
    assert dict(request.tags) == {}
    assert dict(request.provider_options) == {}


def test_full_request_keeps_every_field() -> None:
    doc = minimal(
        event_id="3f1c1f0e-8f0a-4a7e-9a51-0d6f7a1d2b3c",
        occurred_at="2030-01-01T09:00:00.123Z",
        recipients=["+7 (999) 123-45-67", "79990000001"],
        text="Привет, мир",
        sender_id="SMSC.ru",
        channel="flash",
        transport="smpp",
        validity_seconds=3600,
        schedule_at="2030-01-01T10:00:00+03:00",
        comment="campaign 42",
        registered_delivery=False,
        provider_options={"fmt": 3, "nested": {"a": [1, 2]}},
        tags={"order": "A-17", "team.name": "billing"},
    )
    request = accepted(doc)
    assert request.request_id == "req-1"
    assert request.recipients == ("79991234567", "79990000001")
    assert request.text == "Привет, мир"
    assert request.sender_id == "SMSC.ru"
    assert request.channel == "flash"
    assert request.transport == "smpp"
    assert request.validity_seconds == 3600
    assert request.schedule_at == datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
    assert request.schedule_at.utcoffset() == timedelta(hours=3)
    assert request.comment == "campaign 42"
    assert request.registered_delivery is False
    assert dict(request.provider_options) == {"fmt": 3, "nested": {"a": [1, 2]}}
    assert dict(request.tags) == {"order": "A-17", "team.name": "billing"}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_channel_is_accepted(channel: str) -> None:
    assert accepted(minimal(channel=channel)).channel == channel


@pytest.mark.parametrize("transport", sorted(t.value for t in TRANSPORTS))
def test_every_transport_is_accepted(transport: str) -> None:
    assert accepted(minimal(transport=transport)).transport is Transport(transport)


def test_limits_are_inclusive() -> None:
    request = accepted(
        minimal(
            request_id="r" * MAX_REQUEST_ID,
            recipients=[f"7999{n:07d}" for n in range(MAX_RECIPIENTS)],
            text="x" * MAX_TEXT_CHARS,
            comment="c" * 1000,
            tags={f"k{n}": "v" * 256 for n in range(32)},
        )
    )
    assert len(request.recipients) == MAX_RECIPIENTS
    assert accepted(minimal(validity_seconds=60)).validity_seconds == 60
    assert accepted(minimal(validity_seconds=604800)).validity_seconds == 604800
    assert accepted(minimal(sender_id="A" * 11)).sender_id == "A" * 11
    assert accepted(minimal(sender_id="+" + "7" * 19)).sender_id == "+" + "7" * 19


def test_schedule_in_z_form_is_utc() -> None:
    request = accepted(minimal(schedule_at="2030-05-06T07:08:09Z"))
    assert request.schedule_at == datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


# -- phone numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+79991234567", "79991234567"),
        ("79991234567", "79991234567"),
        ("+7 (999) 123-45-67", "79991234567"),
        ("8-800-700-76-72", "88007007672"),
        ("12345", "12345"),
        ("1" * 20, "1" * 20),
    ],
)
def test_phone_normalization(raw: str, normal: str) -> None:
    assert normalize_phone(raw) == normal


@pytest.mark.parametrize(
    "raw", ["", "1234", "1" * 21, "+", "++79991234567", "7999abc4567", "7999.123.4567", "+7 999 x"]
)
def test_not_a_phone(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_phone_with_trailing_newline_is_not_a_phone() -> None:
    assert normalize_phone("+79991234567\n") in {None, "79991234567"}
    parsed = parse(minimal(recipients=["+79991234567\n"]))
    assert not isinstance(parsed, SendRequest) or parsed.recipients == ("79991234567",)


def test_sender_id_and_tag_key_with_trailing_newline_are_refused() -> None:
    refused(minimal(sender_id="ABC\n"), "invalid_sender_id")
    refused(minimal(tags={"key\n": "v"}), "invalid_tags")


def test_duplicate_recipients_are_removed_keeping_first_order() -> None:
    request = accepted(
        minimal(recipients=["79990000002", "+7 999 000-00-01", "+79990000002", "79990000001"])
    )
    assert request.recipients == ("79990000002", "79990000001")


# -- every reason code ---------------------------------------------------------------------


def test_tombstone_is_empty_value() -> None:
    assert parse_send_request(None) == InvalidRequest(
        "empty_value", "record has no value (tombstone)"
    )


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"a":"\\ud800"}', b"[]", b"null", b'"x"', b"1"]
)
def test_invalid_json(raw: bytes) -> None:
    parsed = parse_send_request(raw)
    assert isinstance(parsed, InvalidRequest)
    assert parsed.code == "invalid_json"
    assert parsed.request_id is None


def _without(key: str) -> dict[str, Any]:
    doc = minimal()
    del doc[key]
    return doc


# Each document is refused by the parser with the code, and by the JSON Schema too.
INVALID_DOCS: list[tuple[str, dict[str, Any]]] = [
    ("unsupported_schema", _without("schema")),
    ("unsupported_schema", minimal(schema="smsc.send-request/2")),
    ("unsupported_schema", minimal(schema=1)),
    ("unknown_field", minimal(priority="high")),
    ("unknown_field", minimal(Text="x")),
    ("invalid_request_id", _without("request_id")),
    ("invalid_request_id", minimal(request_id="")),
    ("invalid_request_id", minimal(request_id="r" * (MAX_REQUEST_ID + 1))),
    ("invalid_request_id", minimal(request_id=17)),
    ("invalid_recipients", _without("recipients")),
    ("invalid_recipients", minimal(recipients=[])),
    ("invalid_recipients", minimal(recipients="+79991234567")),
    ("invalid_recipients", minimal(recipients={"phone": "79991234567"})),
    ("too_many_recipients", minimal(recipients=["79991234567"] * (MAX_RECIPIENTS + 1))),
    ("invalid_phone", minimal(recipients=["79991234567", "call me"])),
    ("invalid_phone", minimal(recipients=["1234"])),
    ("invalid_phone", minimal(recipients=[79991234567])),
    ("invalid_phone", minimal(recipients=[None])),
    ("invalid_text", _without("text")),
    ("invalid_text", minimal(text="")),
    ("invalid_text", minimal(text=42)),
    ("invalid_text", minimal(text=["a"])),
    ("text_too_long", minimal(text="x" * (MAX_TEXT_CHARS + 1))),
    ("invalid_sender_id", minimal(sender_id="")),
    ("invalid_sender_id", minimal(sender_id="TwelveChars1")),
    ("invalid_sender_id", minimal(sender_id="Имя")),
    ("invalid_sender_id", minimal(sender_id="7" * 21)),
    ("invalid_sender_id", minimal(sender_id=5)),
    ("invalid_channel", minimal(channel="fax")),
    ("invalid_channel", minimal(channel="SMS")),
    ("invalid_channel", minimal(channel=1)),
    ("invalid_transport", minimal(transport="smtp")),
    ("invalid_validity", minimal(validity_seconds=59)),
    ("invalid_validity", minimal(validity_seconds=604801)),
    ("invalid_validity", minimal(validity_seconds=True)),
    ("invalid_validity", minimal(validity_seconds="600")),
    ("invalid_validity", minimal(validity_seconds=600.5)),
    ("invalid_schedule", minimal(schedule_at="tomorrow")),
    ("invalid_schedule", minimal(schedule_at="2030-01-01T10:00:00")),
    ("invalid_schedule", minimal(schedule_at=1893456000)),
    ("invalid_comment", minimal(comment="c" * 1001)),
    ("invalid_comment", minimal(comment=7)),
    ("invalid_tags", minimal(tags="a=b")),
    ("invalid_tags", minimal(tags=["a"])),
    ("invalid_tags", minimal(tags={"bad key": "x"})),
    ("invalid_tags", minimal(tags={"": "x"})),
    ("invalid_tags", minimal(tags={"k" * 65: "x"})),
    ("invalid_tags", minimal(tags={"n": 1})),
    ("invalid_tags", minimal(tags={"n": None})),
    ("invalid_tags", minimal(tags={"n": "v" * 257})),
    ("invalid_tags", minimal(tags={f"k{n}": "v" for n in range(33)})),
    ("invalid_registered_delivery", minimal(registered_delivery="yes")),
    ("invalid_registered_delivery", minimal(registered_delivery=1)),
    ("invalid_provider_options", minimal(provider_options=[])),
    ("invalid_provider_options", minimal(provider_options="fmt=3")),
]


@pytest.mark.parametrize(
    ("code", "doc"), INVALID_DOCS, ids=[f"{n}-{code}" for n, (code, _) in enumerate(INVALID_DOCS)]
)
def test_invalid_document_is_refused_by_parser_and_schema(code: str, doc: dict[str, Any]) -> None:
    refused(doc, code)
    assert not is_valid(doc, REQUEST_SCHEMA)


def test_every_documented_reason_code_is_reached() -> None:
    codes = {code for code, _ in INVALID_DOCS} | {"invalid_json", "empty_value"}
    assert codes >= {
        "invalid_json",
        "unsupported_schema",
        "unknown_field",
        "invalid_request_id",
        "invalid_recipients",
        "too_many_recipients",
        "invalid_phone",
        "invalid_text",
        "text_too_long",
        "invalid_sender_id",
        "invalid_channel",
        "invalid_transport",
        "invalid_validity",
        "invalid_schedule",
        "invalid_comment",
        "invalid_tags",
        "empty_value",
    }


def test_request_id_is_kept_when_readable() -> None:
    assert refused(minimal(text=""), "invalid_text").request_id == "req-1"
    assert refused(minimal(schema="v2"), "unsupported_schema").request_id == "req-1"
    assert refused(minimal(extra=1), "unknown_field").request_id == "req-1"
    assert refused(minimal(recipients=["x"]), "invalid_phone").request_id == "req-1"


@pytest.mark.parametrize("request_id", ["", "r" * (MAX_REQUEST_ID + 1), 5, None, ["a"]])
def test_request_id_is_dropped_when_unreadable(request_id: object) -> None:
    parsed = parse(minimal(request_id=request_id, text=""))
    assert isinstance(parsed, InvalidRequest)
    assert parsed.request_id is None


def test_unknown_fields_are_named_in_the_message() -> None:
    parsed = refused(minimal(zeta=1, alpha=2), "unknown_field")
    assert "alpha, zeta" in parsed.message


def test_schema_is_checked_before_anything_else() -> None:
    refused({"schema": "other", "request_id": "", "recipients": []}, "unsupported_schema")


OPTIONAL_FIELDS = (
    "sender_id",
    "channel",
    "transport",
    "validity_seconds",
    "schedule_at",
    "comment",
    "registered_delivery",
    "provider_options",
    "tags",
    "event_id",
    "occurred_at",
)


@pytest.mark.parametrize("key", OPTIONAL_FIELDS)
def test_an_optional_field_given_as_null_means_not_set(key: str) -> None:
    assert accepted(minimal(**{key: None})) == accepted(minimal())


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-00:01"],
)
def test_a_time_that_does_not_exist_in_utc_is_refused(moment: str) -> None:
    # Valid for the schema's date-time format, which knows no time zones' arithmetic.
    assert is_valid(minimal(schedule_at=moment), REQUEST_SCHEMA)
    assert "outside" in refused(minimal(schedule_at=moment), "invalid_schedule").message
    refused(minimal(occurred_at=moment), "invalid_occurred_at")


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59+14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]
)
def test_the_last_and_first_times_in_utc_are_accepted(moment: str) -> None:
    accepted(minimal(schedule_at=moment))


@pytest.mark.parametrize(
    ("value", "ok"), [(59, False), (60, True), (604800, True), (604801, False)]
)
def test_validity_edges(value: int, ok: bool) -> None:
    parsed = parse(minimal(validity_seconds=value))
    assert isinstance(parsed, SendRequest) is ok
    assert is_valid(minimal(validity_seconds=value), REQUEST_SCHEMA) is ok


@pytest.mark.parametrize(("key", "value"), [("channel", []), ("transport", {}), ("channel", {})])
def test_unhashable_channel_or_transport_is_refused(key: str, value: object) -> None:
    refused(minimal(**{key: value}), f"invalid_{key}")


# Documents the parser accepts although the schema (the same contract for other tools)
# refuses them. The module docstring promises that the two agree.
PARSER_ONLY: list[tuple[str, dict[str, Any]]] = [
    ("event_id not a uuid", minimal(event_id=5)),
    ("occurred_at not a time", minimal(occurred_at="yesterday")),
    ("schedule_at with a space", minimal(schedule_at="2030-01-01 10:00:00Z")),
    ("schedule_at without seconds", minimal(schedule_at="2030-01-01T10:00Z")),
    ("schedule_at basic format", minimal(schedule_at="20300101T100000Z")),
    ("space before +", minimal(recipients=[" +79991234567"])),
    ("phone longer than 30 chars", minimal(recipients=["7-9-9-9-1-2-3-4-5-6-7-8-9-0-1-2"])),
]


@pytest.mark.parametrize(("case", "doc"), PARSER_ONLY, ids=[case for case, _ in PARSER_ONLY])
def test_parser_accepts_only_what_the_schema_accepts(case: str, doc: dict[str, Any]) -> None:
    if isinstance(parse(doc), SendRequest):
        validate_event(doc)


# -- hypothesis ----------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_send_request(raw), SendRequest | InvalidRequest)


_DIGITS = st.text(string.digits, min_size=5, max_size=15)


@st.composite
def phones(draw: st.DrawFn) -> str:
    digits = draw(_DIGITS)
    style = draw(st.sampled_from(["plain", "plus", "dashed", "spaced", "brackets"]))
    if style == "plus":
        return "+" + digits
    if style == "dashed":
        return "-".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    if style == "spaced":
        return "+" + " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    if style == "brackets":
        return f"+{digits[0]} ({digits[1:4]}) {digits[4:]}"
    return digits


_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5))])


@st.composite
def rfc3339_times(draw: st.DrawFn) -> str:
    moment = draw(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
    ).replace(tzinfo=draw(_OFFSETS))
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds"])))
    return text.replace("+00:00", "Z")


_TAG_KEYS = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
_JSON = st.recursive(
    _JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)

valid_docs = st.fixed_dictionaries(
    {
        "schema": st.just(SCHEMA),
        "request_id": st.text(min_size=1, max_size=MAX_REQUEST_ID),
        "recipients": st.lists(phones(), min_size=1, max_size=5),
        "text": st.text(min_size=1, max_size=300),
    },
    optional={
        "event_id": st.uuids().map(str),
        "occurred_at": rfc3339_times(),
        "sender_id": st.from_regex(r"[0-9+]{1,20}|[A-Za-z0-9 ._\-&!]{1,11}", fullmatch=True),
        "channel": st.sampled_from(sorted(CHANNELS)),
        "transport": st.sampled_from(sorted(TRANSPORTS)),
        "validity_seconds": st.integers(60, 604800),
        "schedule_at": rfc3339_times(),
        "comment": st.text(max_size=1000),
        "registered_delivery": st.booleans(),
        "provider_options": st.dictionaries(st.text(max_size=8), _JSON, max_size=3),
        "tags": st.dictionaries(_TAG_KEYS, st.text(max_size=256), max_size=32),
    },
)


@settings(deadline=None)
@given(valid_docs)
def test_valid_documents_are_accepted_by_both(doc: dict[str, Any]) -> None:
    validate_event(doc)
    request = parse(doc)
    assert isinstance(request, SendRequest), request
    assert request.request_id == doc["request_id"]
    assert request.text == doc["text"]
    expected = list(dict.fromkeys(normalize_phone(p) for p in doc["recipients"]))
    assert list(request.recipients) == expected
    assert all(p.isascii() and p.isdigit() for p in request.recipients)
    assert dict(request.tags) == doc.get("tags", {})


# Arbitrary JSON in one field of a valid document. channel and transport get scalars only:
# lists and objects there crash the parser (see the xfail test above).
_MUTABLE_FIELDS = sorted(
    {
        "schema",
        "event_id",
        "occurred_at",
        "request_id",
        "recipients",
        "text",
        "sender_id",
        "validity_seconds",
        "schedule_at",
        "comment",
        "provider_options",
        "tags",
        "registered_delivery",
        "unknown",
    }
)


@settings(deadline=None)
@given(
    valid_docs,
    st.sampled_from(_MUTABLE_FIELDS).flatmap(lambda key: st.tuples(st.just(key), _JSON))
    | st.tuples(st.sampled_from(["channel", "transport"]), _JSON_SCALARS),
)
def test_any_value_in_any_field_gives_a_result_not_an_exception(
    doc: dict[str, Any], mutation: tuple[str, Any]
) -> None:
    key, value = mutation
    doc[key] = value
    parsed = parse(doc)
    assert isinstance(parsed, SendRequest | InvalidRequest)
    if isinstance(parsed, InvalidRequest):
        assert parsed.code
        readable = isinstance(doc.get("request_id"), str) and 0 < len(doc["request_id"]) <= 128
        assert parsed.request_id == (doc["request_id"] if readable else None)


_KNOWN_FIELDS = frozenset(_MUTABLE_FIELDS) - {"unknown"} | {"channel", "transport"}
# JSON producers emit 64-bit integers at most; orjson refuses to write larger ones.
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

_LETTERS = st.text(string.ascii_letters, min_size=1, max_size=12)

# One field of a valid document replaced by a value both the parser and the schema refuse.
INVALID_VALUES: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "schema": ("unsupported_schema", st.text(max_size=20).filter(lambda s: s != SCHEMA)),
    "request_id": (
        "invalid_request_id",
        st.just("") | st.text(min_size=129, max_size=140) | _INT64 | st.none(),
    ),
    "recipients": ("invalid_recipients", st.just([]) | st.text(max_size=20) | _INT64),
    "text": ("invalid_text", st.just("") | _INT64 | st.lists(st.text(), max_size=2)),
    "sender_id": ("invalid_sender_id", st.text(string.ascii_letters, min_size=12, max_size=20)),
    "channel": ("invalid_channel", _LETTERS.filter(lambda s: s not in CHANNELS)),
    "transport": ("invalid_transport", _LETTERS.filter(lambda s: s not in TRANSPORTS)),
    "validity_seconds": (
        "invalid_validity",
        _INT64.filter(lambda n: n <= 59)
        | st.integers(min_value=604801, max_value=2**63 - 1)
        | st.booleans()
        | _LETTERS,
    ),
    "schedule_at": ("invalid_schedule", _LETTERS | _INT64),
    "comment": ("invalid_comment", st.text(min_size=1001, max_size=1010) | _INT64),
    "tags": (
        "invalid_tags",
        st.dictionaries(st.text(" /:#", min_size=1, max_size=3), st.text(max_size=5), min_size=1)
        | st.dictionaries(_TAG_KEYS, _INT64, min_size=1, max_size=3)
        | st.lists(st.text(), max_size=2),
    ),
    "registered_delivery": ("invalid_registered_delivery", _INT64 | _LETTERS),
    "provider_options": ("invalid_provider_options", st.lists(_INT64) | _LETTERS),
}


@st.composite
def invalid_docs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    doc = draw(valid_docs)
    if draw(st.booleans()):
        names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)
        doc[draw(names.filter(lambda n: n not in _KNOWN_FIELDS))] = 1
        return "unknown_field", doc
    key = draw(st.sampled_from(sorted(INVALID_VALUES)))
    code, values = INVALID_VALUES[key]
    doc[key] = draw(values)
    return code, doc


@settings(deadline=None)
@given(invalid_docs())
def test_invalid_documents_are_refused_by_both(case: tuple[str, dict[str, Any]]) -> None:
    code, doc = case
    refused(doc, code)
    assert not is_valid(doc, REQUEST_SCHEMA)


# The usual request (no optional field past the sender id and the report flag) is built
# without looking up the other fields; null in one of those means "not set", so the same
# document with them null goes the general way and must give the same answer.
_USUAL_FIELDS = ["event_id", "occurred_at", "request_id", "recipients", "text", "sender_id"]
_LESS_USUAL_FIELDS = [
    "channel",
    "transport",
    "validity_seconds",
    "schedule_at",
    "comment",
    "provider_options",
    "tags",
]


@settings(deadline=None)
@given(
    valid_docs.map(lambda doc: {k: v for k, v in doc.items() if k not in _LESS_USUAL_FIELDS}),
    st.one_of(
        st.none(),
        st.sampled_from([*_USUAL_FIELDS, "registered_delivery", "schema"]).flatmap(
            lambda key: st.tuples(st.just(key), _JSON)
        ),
    ),
    st.lists(st.sampled_from(_LESS_USUAL_FIELDS), min_size=1, unique=True),
)
def test_the_usual_request_parses_as_the_general_way_does(
    doc: dict[str, Any], mutation: tuple[str, Any] | None, nulls: list[str]
) -> None:
    if mutation is not None:
        key, value = mutation
        doc[key] = value
    general = dict(doc, **dict.fromkeys(nulls))
    assert parse(doc) == parse(general)
