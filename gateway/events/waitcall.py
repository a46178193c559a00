"""``smsc.waitcall/1``: number confirmation by call (webhook seed, "Confirm your phone number
with a call"): the subscriber's call as the provider reports it to the client handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
