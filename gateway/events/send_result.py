"""``smsc.send-result/1``: the one outcome of each send request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .envelope import bounded_text, rfc3339, stable_event_ids

SCHEMA = "smsc.send-result/1"
OUTCOMES = frozenset({"accepted", "rejected", "failed", "expired", "duplicate"})
# A result's event_id: stable_event_id(SCHEMA, request_id).
_event_id = stable_event_ids(SCHEMA)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why something did not go through: a stable code, a human message, the wire status."""

    code: str
    message: str
    command_status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": bounded_text(self.message)}
        if self.command_status is not None:
            out["command_status"] = self.command_status
        return out


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What happened for one phone: its provider ids (one per SMS part) or its error."""

    phone: str
    status: str  # accepted | rejected | failed | duplicate
    message_ids: tuple[str, ...] = ()
    error: ErrorInfo | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phone": self.phone,
            "status": self.status,
            "message_ids": list(self.message_ids),
            "parts": len(self.message_ids),
        }
        if self.error is not None:
            out["error"] = self.error.as_dict()
        return out


def overall_outcome(recipients: Sequence[RecipientOutcome]) -> str:
    """``accepted`` when any recipient was accepted; ``duplicate`` when all were duplicates;
    otherwise failed beats rejected.

    A failure (retries exhausted on a temporary error) is reported over a rejection because
    sending the request again may help.
    """
    if len(recipients) == 1:  # each status is the request's own outcome
        return recipients[0].status
    statuses = {r.status for r in recipients}
    if "accepted" in statuses:
        return "accepted"
    if statuses == {"duplicate"}:
        return "duplicate"
    return "failed" if "failed" in statuses else "rejected"


def send_result_event(
    *,
    request_id: str,
    outcome: str,
    occurred_at: datetime,
    received_at: datetime,
    transport: str,
    recipients: Sequence[RecipientOutcome] = (),
    error: ErrorInfo | None = None,
    tags: Mapping[str, str] | None = None,
    attempts: int = 0,
) -> dict[str, Any]:
    """The result event; its ``event_id`` depends on the request id only.

    A request is given one outcome; if a crash makes the gateway process it again, the new
    result carries the same ``event_id`` so consumers keep the first.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    # One dict, built in the order every result has had (envelope fields first).
    event: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": _event_id(request_id),
        "occurred_at": rfc3339(occurred_at),
        "request_id": request_id,
        "outcome": outcome,
        "transport": transport,
        "received_at": rfc3339(received_at),
        "attempts": attempts,
        "recipients": [r.as_dict() for r in recipients],
        "tags": dict(tags) if tags else {},
    }
    if error is not None:
        event["error"] = error.as_dict()
    return event
