"""Reading the correlator's inputs, and what its two stages hand back to the adapter.

Parsing is total in the sense that matters: bad input raises :class:`InvalidInput` with a
reason code, which the stages turn into a dead letter; nothing else escapes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.events.dead_letter import Origin, dead_letter_event, dead_letter_key

from .model import (
    BATCH,
    REPORT,
    SUBMITTED,
    TICK,
    RoutedReport,
    SubmittedMessage,
    from_epoch,
    normalize_phone,
)

ROLE = "correlator"
DLR_SCHEMA = "smsc.dlr/1"
RESULT_SCHEMA = "smsc.send-result/1"
# The error code of a recipient refused as a duplicate of an earlier submit of its request.
PROVIDER_DUPLICATE = "provider_duplicate"


class InvalidInputError(GatewayError):
    """A record the correlator cannot read; ``code`` is the dead letter's reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Channel(enum.Enum):
    ROUTE = "route"
    STATUS = "status"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Outbound:
    """One record to publish: which topic, its key and its JSON document."""

    channel: Channel
    key: bytes | None
    document: dict[str, Any]


@dataclass(slots=True)
class Step:
    """What handling one record produced, with the counts the adapter turns into metrics."""

    outbound: list[Outbound] = field(default_factory=list)
    joined: int = 0
    held: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    expired_complete: int = 0
    expired_incomplete: int = 0
    latencies: list[tuple[float, bool]] = field(default_factory=list)

    def extend(self, other: Step) -> None:
        """Add what ``other`` produced and counted, after what this step has."""
        self.outbound += other.outbound
        self.joined += other.joined
        self.held += other.held
        self.dead_lettered += other.dead_lettered
        self.expired_complete += other.expired_complete
        self.expired_incomplete += other.expired_incomplete
        self.latencies += other.latencies

    def dead_letter(
        self,
        origin: Origin,
        key: bytes | None,
        value: bytes | None,
        *,
        code: str,
        reason: str,
        at: float,
    ) -> None:
        """Add the dead letter of a record that cannot be processed, with the reason."""
        event = dead_letter_event(
            role=ROLE,
            origin=origin,
            reason_code=code,
            reason=reason,
            key=key,
            value=value,
            occurred_at=from_epoch(at),
        )
        self.outbound.append(Outbound(Channel.DEAD_LETTER, dead_letter_key(key), event))
        self.dead_lettered.append(code)


@dataclass(frozen=True, slots=True)
class Report:
    """The fields of a ``smsc.dlr/1`` event the join needs, and the event itself."""

    message_id: str
    phone: str
    status: str
    final: bool
    received_at: float
    event: Mapping[str, Any]
    value: bytes  # the record as it came, for a dead letter


@dataclass(frozen=True, slots=True)
class Tick:
    """Time to look for held reports and entries past their deadline."""


def non_empty(value: bytes | None) -> bytes:
    if not value:
        raise InvalidInputError("empty_value", "the record has no value")
    return value


def load_json(value: bytes | None) -> dict[str, Any]:
    value = non_empty(value)
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError("invalid_json", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("invalid_json", "not a JSON object")
    return doc


def parse_report(value: bytes | None) -> Report:
    """A delivery report; the fields the join relies on are checked, the rest kept as is."""
    value = non_empty(value)
    doc = load_json(value)
    if doc.get("schema") != DLR_SCHEMA:
        raise InvalidInputError("unsupported_schema", f"expected {DLR_SCHEMA}")
    message_id, phone = doc.get("message_id"), doc.get("phone")
    if not isinstance(message_id, str) or not message_id.strip():
        raise InvalidInputError("invalid_message_id", "report without a message id")
    if not isinstance(phone, str) or not normalize_phone(phone):
        raise InvalidInputError("invalid_phone", "report without a phone number")
    status, final = doc.get("status"), doc.get("final")
    if not isinstance(status, str) or not isinstance(final, bool):
        raise InvalidInputError("invalid_status", "report without status and final")
    if not isinstance(doc.get("event_id"), str):
        raise InvalidInputError("invalid_event_id", "report without an event_id")
    received_at = _timestamp(doc.get("received_at"), "received_at")
    return Report(message_id, normalize_phone(phone), status, final, received_at, doc, value)


def parse_send_result(value: bytes | None) -> list[SubmittedMessage]:
    """The accepted recipients of a send result, and its replayed ones (refused as duplicates
    of a first submit made before a crash); none for any other outcome."""
    doc = load_json(value)
    if doc.get("schema") != RESULT_SCHEMA:
        raise InvalidInputError("unsupported_schema", f"expected {RESULT_SCHEMA}")
    request_id, recipients = doc.get("request_id"), doc.get("recipients", [])
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInputError("invalid_request_id", "result without a request_id")
    if not isinstance(recipients, list):
        raise InvalidInputError("invalid_recipients", "recipients must be an array")
    tags = doc.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidInputError("invalid_tags", "tags must be an object")
    submitted_at = _timestamp(doc.get("occurred_at"), "occurred_at")
    accepted = [r for r in recipients if isinstance(r, dict) and r.get("status") == "accepted"]
    replayed = [r for r in recipients if isinstance(r, dict) and _replayed(r)]
    return [_submitted(request_id, r, tags, submitted_at) for r in accepted] + [
        SubmittedMessage(request_id, normalize_phone(r["phone"]), (), tags, submitted_at, True)
        for r in replayed
    ]


def _replayed(recipient: dict[str, Any]) -> bool:
    error = recipient.get("error")
    return (
        recipient.get("status") == "duplicate"
        and isinstance(error, dict)
        and error.get("code") == PROVIDER_DUPLICATE
        and isinstance(recipient.get("phone"), str)
        and bool(normalize_phone(recipient["phone"]))
    )


def _submitted(
    request_id: str, recipient: dict[str, Any], tags: dict[str, Any], at: float
) -> SubmittedMessage:
    phone, ids = recipient.get("phone"), recipient.get("message_ids")
    if not isinstance(phone, str) or not normalize_phone(phone):
        raise InvalidInputError("invalid_phone", "accepted recipient without a phone number")
    if not isinstance(ids, list) or not ids or not all(isinstance(m, str) and m for m in ids):
        raise InvalidInputError("invalid_message_ids", "accepted recipient without message ids")
    distinct = tuple(dict.fromkeys(ids))  # an id listed twice is one part, not two
    return SubmittedMessage(request_id, normalize_phone(phone), distinct, tags, at)


RouteRecord = SubmittedMessage | RoutedReport | Tick


def route_batch(documents: list[dict[str, Any]]) -> bytes:
    """One record of the route topic carrying many route documents, in order."""
    return orjson.dumps({"kind": BATCH, "items": documents})


def parse_route_record(value: bytes | None) -> RouteRecord:
    """A record of the internal route topic that carries one document."""
    items = parse_route_records(value)
    if len(items) != 1:
        raise InvalidInputError("invalid_route_record", "expected one route document")
    if isinstance(items[0], InvalidInputError):
        raise items[0]
    return items[0]


def parse_route_records(value: bytes | None) -> list[RouteRecord | InvalidInputError]:
    """The documents of a route-topic record, in order: a batch carries many, the record of
    a single document (as the route stage wrote them before batching, and ticks) one. A
    document that cannot be read comes back as its error, in its place."""
    doc = load_json(value)
    if doc.get("kind") != BATCH:
        return [_route_document(doc)]
    items = doc.get("items")
    if not isinstance(items, list):
        raise InvalidInputError("invalid_route_record", "a batch without items")
    return [
        _route_document(item)
        if isinstance(item, dict)
        else InvalidInputError("invalid_route_record", "a batch item that is not an object")
        for item in items
    ]


def _route_document(doc: dict[str, Any]) -> RouteRecord | InvalidInputError:
    kind = doc.get("kind")
    try:
        if kind == SUBMITTED:
            return SubmittedMessage.from_record(doc)
        if kind == REPORT:
            return RoutedReport.from_record(doc)
        if kind == TICK:
            return Tick()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return InvalidInputError("invalid_route_record", f"malformed {kind} record: {exc}")
    return InvalidInputError("invalid_route_record", f"unknown record kind {kind!r}")


def _timestamp(value: object, name: str) -> float:
    if not isinstance(value, str):
        raise InvalidInputError(f"invalid_{name}", f"{name} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"invalid_{name}", f"{name} must be an RFC 3339 time") from exc
    if moment.tzinfo is None:
        raise InvalidInputError(f"invalid_{name}", f"{name} must carry a time zone")
    return moment.timestamp()
