"""``smsc.waitcall/1``: number confirmation by call (webhook seed, "Confirm your phone number
with a call"): the subscriber's call as the provider reports it to the client handler, the
number wait_call.php gave for a request, and the request's outcome.

Ids: a call by phone and call time (the provider's repeats share it); ``number_issued`` by
request_id; an outcome by request_id alone, whatever its kind, so that a request has one
outcome id even if a replay were to decide otherwise (consumers keep the first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from .envelope import envelope, rfc3339, stable_event_id

WAITCALL_SCHEMA = "smsc.waitcall/1"


@dataclass(frozen=True, slots=True)
class CallConfirmation:
    """A subscriber called to confirm their number; ``ts`` is the provider's call time."""

    source: str  # webhook | api | poll
    phone: str
    received_at: datetime
    ts: int
    called_at: datetime | None = None
    calltime: str | None = None
    callmenu: str | None = None
    ringtime: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def event_id(self) -> str:
        """Equal for the provider's repeats of one call: the phone and the call time."""
        return stable_event_id(WAITCALL_SCHEMA, "call", self.phone, self.ts)


def waitcall_event(call: CallConfirmation) -> dict[str, Any]:
    """The ``smsc.waitcall/1`` event of a confirmation call."""
    event = envelope(WAITCALL_SCHEMA, call.event_id(), call.called_at or call.received_at)
    event.update(
        source=call.source,
        kind="call",
        phone=call.phone,
        received_at=rfc3339(call.received_at),
        called_at=rfc3339(call.called_at) if call.called_at else None,
        ts=call.ts,
        calltime=call.calltime,
        callmenu=call.callmenu,
        ringtime=call.ringtime,
        raw=call.raw,
    )
    return event


# Outcomes of a confirmation request, after its number_issued (or instead of it).
CONFIRMED, EXPIRED, REJECTED, FAILED = "confirmed", "expired", "rejected", "failed"
OUTCOME_KINDS = frozenset({CONFIRMED, EXPIRED, REJECTED, FAILED})


def _no_tags() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NumberIssued:
    """wait_call.php gave ``call_to`` for a request: the subscriber must call it by
    ``deadline``."""

    request_id: str
    phone: str
    call_to: str
    all_phones: tuple[str, ...]
    issued_at: datetime
    deadline: datetime
    tags: Mapping[str, str] = field(default_factory=_no_tags)
    raw: Mapping[str, Any] = field(default_factory=_no_tags)

    def event_id(self) -> str:
        return stable_event_id(WAITCALL_SCHEMA, "number_issued", self.request_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a confirmation request ended. ``issued`` is its number_issued, when there was one;
    ``call`` the call that confirmed it (its time and event_id)."""

    kind: str  # confirmed | expired | rejected | failed
    request_id: str
    phone: str
    decided_at: datetime
    tags: Mapping[str, str] = field(default_factory=_no_tags)
    issued: NumberIssued | None = None
    called_at: datetime | None = None
    call_event_id: str | None = None
    reason_code: str | None = None
    reason: str | None = None
    error_code: int | None = None

    def event_id(self) -> str:
        return stable_event_id(WAITCALL_SCHEMA, "outcome", self.request_id)

    @property
    def latency_seconds(self) -> float | None:
        if self.called_at is None or self.issued is None:
            return None
        # Clocks differ (the call time is the provider's): never below zero.
        return max(0.0, (self.called_at - self.issued.issued_at).total_seconds())


def number_issued_event(issued: NumberIssued) -> dict[str, Any]:
    """The ``number_issued`` event of a request."""
    event = envelope(WAITCALL_SCHEMA, issued.event_id(), issued.issued_at)
    event.update(
        source="api",
        kind="number_issued",
        phone=issued.phone,
        received_at=rfc3339(issued.issued_at),
        request_id=issued.request_id,
        tags=dict(issued.tags),
        call_to=issued.call_to,
        all_phones=list(issued.all_phones),
        issued_at=rfc3339(issued.issued_at),
        deadline=rfc3339(issued.deadline),
        raw=dict(issued.raw),
    )
    return event


def outcome_event(outcome: Outcome) -> dict[str, Any]:
    """The outcome event of a request (confirmed, expired, rejected or failed)."""
    issued = outcome.issued
    decided = outcome.kind in {CONFIRMED, EXPIRED}
    event = envelope(WAITCALL_SCHEMA, outcome.event_id(), outcome.decided_at)
    event.update(
        source="gateway" if decided else "api",
        kind=outcome.kind,
        phone=outcome.phone,
        received_at=rfc3339(outcome.decided_at),
        request_id=outcome.request_id,
        tags=dict(outcome.tags),
        call_to=issued.call_to if issued else None,
        all_phones=list(issued.all_phones) if issued else None,
        issued_at=rfc3339(issued.issued_at) if issued else None,
        deadline=rfc3339(issued.deadline) if issued else None,
        called_at=rfc3339(outcome.called_at) if outcome.called_at else None,
        latency_seconds=outcome.latency_seconds,
        call_event_id=outcome.call_event_id,
        reason=_reason(outcome),
        error_code=outcome.error_code,
        raw={},
    )
    return event


def _reason(outcome: Outcome) -> dict[str, str] | None:
    if outcome.reason_code is None:
        return None
    return {"code": outcome.reason_code, "message": outcome.reason or ""}
