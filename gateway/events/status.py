"""``smsc.status/1``: delivery reports joined with the request that caused them.

Two scopes share the schema. A ``part`` event is one provider report for one SMS part, with the
request's fields, the normalized status and the provider's raw fields. A ``message`` event is
the overall status of everything sent to one phone for one request, published once every part
has a final report, or when the correlator gives up waiting (``complete`` is then false).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .envelope import envelope, rfc3339, stable_event_id

SCHEMA = "smsc.status/1"

# The provider's fields a part event carries over from the ``smsc.dlr/1`` event, as they were.
REPORT_FIELDS = (
    "event_id",
    "source",
    "stat",
    "err",
    "err_name",
    "received_at",
    "submit_date",
    "done_date",
    "sub",
    "dlvrd",
    "cost",
    "parts",
    "mccmnc",
    "message_state",
    "network_error_code",
    "flags",
    "extra_status",
    "hlr",
    "raw",
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the correlator knows about the request behind a provider message id."""

    request_id: str
    phone: str
    tags: Mapping[str, str]
    submitted_at: datetime
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """One part's final status in a message event (``None``: it never reported one)."""

    index: int
    message_id: str
    status: str | None


def part_status_event(
    context: RequestContext, *, index: int, report: Mapping[str, Any], reported_at: datetime
) -> dict[str, Any]:
    """The status of one part from one ``smsc.dlr/1`` event.

    Its ``event_id`` derives from the request and the report's own id, so the provider's
    repeats of a report and the correlator's replays after a restart carry the same id.
    """
    event_id = stable_event_id(SCHEMA, "part", context.request_id, report["event_id"])
    event = envelope(SCHEMA, event_id, reported_at)
    event.update(
        scope="part",
        **_request_fields(context, reported_at),
        message_id=context.message_ids[index - 1],
        part={"index": index, "count": len(context.message_ids)},
        status=report["status"],
        final=report["final"],
        report={name: report[name] for name in REPORT_FIELDS if name in report},
    )
    return event


def message_status_event(
    context: RequestContext,
    *,
    status: str,
    complete: bool,
    parts: Sequence[PartOutcome],
    decided_at: datetime,
) -> dict[str, Any]:
    """The overall status of the message to one phone; one ``event_id`` per (request, phone)."""
    event_id = stable_event_id(SCHEMA, "message", context.request_id, context.phone)
    event = envelope(SCHEMA, event_id, decided_at)
    event.update(
        scope="message",
        **_request_fields(context, decided_at),
        status=status,
        final=True,
        complete=complete,
        parts=[{"index": p.index, "message_id": p.message_id, "status": p.status} for p in parts],
    )
    return event


def _request_fields(context: RequestContext, at: datetime) -> dict[str, Any]:
    latency = max(0.0, (at - context.submitted_at).total_seconds())
    return {
        "request_id": context.request_id,
        "phone": context.phone,
        "tags": dict(context.tags),
        "submitted_at": rfc3339(context.submitted_at),
        "latency_seconds": round(latency, 3),
    }
