"""``smsc.dlr/1`` and ``smsc.incoming/1``: delivery reports and incoming SMS, any source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .envelope import envelope, rfc3339, stable_event_id

DLR_SCHEMA = "smsc.dlr/1"
INCOMING_SCHEMA = "smsc.incoming/1"
# An incoming SMS the provider numbered (``id`` in the webhook, in get.php's answers) is
# identified by that id and the sender's phone, whichever way it came, so consumers running
# the webhook and polling side by side keep one. The word is the webhook's because the
# webhook published these ids first; polling shares it, and ids already on Kafka stay.
_NUMBERED_SOURCE = "webhook"


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
    # What makes the message itself when the provider gave it no ``incoming_id``.
    identity: tuple[object, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    # A concatenated SMS: how many parts it has, and those that never arrived (a partial
    # message, published once its parts stopped coming). None for a single SMS.
    parts: int | None = None
    missing: tuple[int, ...] = ()
    # The provider's id of the incoming message (webhook ``id``, get.php ``id``), and of the
    # message it answers (webhook ``sms_id``); None where the source has none (SMPP).
    incoming_id: str | None = None
    sms_id: str | None = None

    def event_id(self) -> str:
        """Equal for every delivery of one message: by the provider's id when there is one
        (webhook and polling alike), else by the source's own identity."""
        if self.incoming_id:
            return stable_event_id(
                INCOMING_SCHEMA, _NUMBERED_SOURCE, "id", self.incoming_id, self.phone
            )
        return stable_event_id(INCOMING_SCHEMA, self.source, *self.identity)


def incoming_event(message: IncomingMessage) -> dict[str, Any]:
    """The ``smsc.incoming/1`` event of an incoming message."""
    event = envelope(INCOMING_SCHEMA, message.event_id(), message.received_at)
    event.update(
        source=message.source,
        phone=message.phone,
        to=message.to,
        text=message.text,
        incoming_id=message.incoming_id,
        sms_id=message.sms_id,
        raw=message.raw,
    )
    if message.data_coding is not None:
        event["data_coding"] = message.data_coding
    if message.parts is not None:
        event.update(
            parts=message.parts, partial=bool(message.missing), missing=list(message.missing)
        )
    return event
