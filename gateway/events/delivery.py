"""``smsc.dlr/1`` and ``smsc.incoming/1``: delivery reports and incoming SMS, any source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .envelope import envelope, rfc3339, stable_event_id

DLR_SCHEMA = "smsc.dlr/1"
INCOMING_SCHEMA = "smsc.incoming/1"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery report in the gateway's terms, keeping the provider's raw fields."""

    source: str  # smpp | webhook | poll
    message_id: str
    phone: str
    status: str
    final: bool
    stat: str
    received_at: datetime
    err: int | None = None
    err_name: str | None = None
    done_at: datetime | None = None
    submit_date: str | None = None
    done_date: str | None = None
    sub: int | None = None
    dlvrd: int | None = None
    cost: str | None = None
    parts: int | None = None
    mccmnc: str | None = None
    message_state: int | None = None
    network_error_code: str | None = None
    flags: dict[str, Any] | None = None
    extra_status: str | None = None
    hlr: dict[str, str] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def event_id(self) -> str:
        """Equal for the provider's repeats of one report, different for a new status."""
        return stable_event_id(
            DLR_SCHEMA,
            self.message_id,
            self.phone,
            self.stat,
            self.err,
            self.done_date,
            self.extra_status,
        )


def dlr_event(report: DeliveryReport) -> dict[str, Any]:
    """The ``smsc.dlr/1`` event of a report."""
    event = envelope(DLR_SCHEMA, report.event_id(), report.done_at or report.received_at)
    event.update(
        source=report.source,
        message_id=report.message_id,
        phone=report.phone,
        status=report.status,
        final=report.final,
        stat=report.stat,
        err=report.err,
        err_name=report.err_name,
        received_at=rfc3339(report.received_at),
        submit_date=report.submit_date,
        done_date=report.done_date,
        sub=report.sub,
        dlvrd=report.dlvrd,
        cost=report.cost,
        parts=report.parts,
        mccmnc=report.mccmnc,
        message_state=report.message_state,
        network_error_code=report.network_error_code,
        flags=report.flags,
        extra_status=report.extra_status,
        hlr=report.hlr,
        raw=report.raw,
    )
    return event


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """An SMS a subscriber sent to one of the account's numbers."""

    source: str
    phone: str
    to: str
    text: str
    received_at: datetime
    data_coding: int | None  # None where the source has none (the webhook sends text)
    identity: tuple[object, ...]
    raw: dict[str, Any] = field(default_factory=dict)
    # A concatenated SMS: how many parts it has, and those that never arrived (a partial
    # message, published once its parts stopped coming). None for a single SMS.
    parts: int | None = None
    missing: tuple[int, ...] = ()


def incoming_event(message: IncomingMessage) -> dict[str, Any]:
    """The ``smsc.incoming/1`` event of an incoming message."""
    event_id = stable_event_id(INCOMING_SCHEMA, message.source, *message.identity)
    event = envelope(INCOMING_SCHEMA, event_id, message.received_at)
    event.update(
        source=message.source,
        phone=message.phone,
        to=message.to,
        text=message.text,
        raw=message.raw,
    )
    if message.data_coding is not None:
        event["data_coding"] = message.data_coding
    if message.parts is not None:
        event.update(
            parts=message.parts, partial=bool(message.missing), missing=list(message.missing)
        )
    return event
