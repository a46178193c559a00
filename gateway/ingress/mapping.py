"""Callbacks to events (no I/O): ``smsc.dlr/1`` with ``source: webhook``, ``smsc.incoming/1``
and ``smsc.waitcall/1``.

Every event keeps the callback's parameters in ``raw`` as received (the extra parameters of
the handler URL included), except the signature values: they are hashes of the secret, and
a weak secret could be guessed from them offline. The event ids come from the callback's
content, so the provider's repeats of one callback get one id:

- a status: message id, phone, status, err and the status time (``DeliveryReport.event_id``);
- an incoming SMS: the provider's incoming id and the phone (shared with polling,
  :meth:`IncomingMessage.event_id`), or phone, to, times and a hash of the text;
- a call: phone and call time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.events.delivery import DeliveryReport, IncomingMessage, dlr_event, incoming_event
from gateway.events.waitcall import CallConfirmation, waitcall_event
from gateway.provider.codes import (
    MAIL_MESSAGE_TYPE,
    decode_flags,
    delivery_error_name,
    mail_delivery_error_name,
    webhook_status,
)

from .callback import (
    SIGNATURE_FIELDS,
    Callback,
    IncomingCallback,
    StatusCallback,
    WaitcallCallback,
)
from .params import Kind, Params

SOURCE = "webhook"
# Bits 0-3 of the flag and the type parameter share the seed's numbering; 7 is a call, whose
# cnt counts seconds instead of parts.
_CALL_TYPE = 7
# Call times beyond this are not a time stamp the provider would send (year 10000).
_MAX_TIMESTAMP = 253402300799
_SIGNATURE_FIELDS = frozenset(SIGNATURE_FIELDS)


@dataclass(frozen=True, slots=True)
class Routed:
    """An event and where it goes: the topic is chosen by kind, ``key`` is the record key."""

    kind: Kind
    key: bytes
    event: dict[str, Any]


def callback_event(callback: Callback, received_at: datetime) -> Routed:
    """The event of a callback received at ``received_at``."""
    if isinstance(callback, StatusCallback):
        report = delivery_report(callback, received_at)
        return Routed(Kind.STATUS, report.message_id.encode(), dlr_event(report))
    if isinstance(callback, IncomingCallback):
        message = incoming_message(callback, received_at)
        return Routed(Kind.INCOMING, message.phone.encode(), incoming_event(message))
    call = call_confirmation(callback, received_at)
    return Routed(Kind.WAITCALL, call.phone.encode(), waitcall_event(call))


def raw_fields(params: Params) -> dict[str, Any]:
    """The parameters as received, without the signature values."""
    return {k: v for k, v in params.values.items() if k not in _SIGNATURE_FIELDS}


def delivery_report(callback: StatusCallback, received_at: datetime) -> DeliveryReport:
    status, final, extra_status = webhook_status(callback.status)
    message_type = _message_type(callback)
    mail = message_type == MAIL_MESSAGE_TYPE
    return DeliveryReport(
        source=SOURCE,
        message_id=callback.message_id,
        phone=callback.phone,
        status=status,
        final=final,
        stat=str(callback.status),
        received_at=received_at,
        err=callback.err,
        err_name=(mail_delivery_error_name if mail else delivery_error_name)(callback.err),
        done_at=_moment(callback.ts),
        done_date=callback.time,
        cost=callback.cost,
        parts=callback.cnt if message_type != _CALL_TYPE else None,
        flags=decode_flags(callback.flag) if callback.flag is not None else None,
        extra_status=extra_status,
        hlr=dict(callback.hlr) or None,
        raw=raw_fields(callback.params),
    )


def incoming_message(callback: IncomingCallback, received_at: datetime) -> IncomingMessage:
    identity: tuple[object, ...] = ()
    if not callback.incoming_id:
        digest = hashlib.sha256(callback.mes.encode("utf-8", "replace")).hexdigest()
        identity = ("content", callback.phone, callback.to, callback.time, callback.sent, digest)
    return IncomingMessage(
        source=SOURCE,
        phone=callback.phone,
        to=(callback.to or "").lstrip("+"),
        text=callback.mes,
        received_at=_moment(callback.time) or received_at,
        data_coding=None,
        identity=identity,
        raw=raw_fields(callback.params),
        incoming_id=callback.incoming_id or None,
        sms_id=callback.sms_id or None,
    )


def call_confirmation(callback: WaitcallCallback, received_at: datetime) -> CallConfirmation:
    voice = callback.voice
    return CallConfirmation(
        source=SOURCE,
        phone=callback.phone,
        received_at=received_at,
        ts=callback.ts,
        called_at=_moment(callback.ts),
        calltime=voice.calltime if voice else None,
        callmenu=voice.callmenu if voice else None,
        ringtime=voice.ringtime if voice else None,
        raw=raw_fields(callback.params),
    )


def _message_type(callback: StatusCallback) -> int | None:
    if callback.message_type is not None:
        return callback.message_type
    return callback.flag & 0x0F if callback.flag is not None else None


def _moment(stamp: int | None) -> datetime | None:
    """A provider time stamp (seconds) as UTC; ``None`` for none or one out of range."""
    if stamp is None or not 0 < stamp <= _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(stamp, UTC)
