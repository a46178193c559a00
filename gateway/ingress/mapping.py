"""Callbacks to events (no I/O): ``smsc.dlr/1`` with ``source: webhook``, ``smsc.incoming/1``
and ``smsc.waitcall/1``.

Every event keeps the callback's parameters in ``raw`` as received (the extra parameters of
the handler URL included), except the signature values: they are hashes of the secret, and
a weak secret could be guessed from them offline. The event ids come from the callback's
content, so the provider's repeats of one callback get one id:

- a status: message id, phone, status, err and the status time (as ``DeliveryReport.event_id``);
- an incoming SMS: the provider's incoming id and the phone (shared with polling,
  :meth:`IncomingMessage.event_id`), or phone, to, times and a hash of the text;
- a call: phone and call time.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.events.delivery import DLR_SCHEMA, IncomingMessage, incoming_event
from gateway.events.envelope import rfc3339, stable_event_id
from gateway.events.waitcall import CallConfirmation, waitcall_event
from gateway.provider.codes import (
    MAIL_MESSAGE_TYPE,
    decode_flags,
    delivery_error_name,
    mail_delivery_error_name,
    webhook_status,
)

from .callback import (
    HLR_FIELDS,
    SIGNATURE_FIELDS,
    Callback,
    IncomingCallback,
    StatusCallback,
    StatusFields,
    WaitcallCallback,
)
from .params import Kind, Params

SOURCE = "webhook"
# Bits 0-3 of the flag and the type parameter share the seed's numbering; 7 is a call, whose
# cnt counts seconds instead of parts.
_CALL_TYPE = 7
# Call times beyond this are not a time stamp the provider would send (year 10000).
_MAX_TIMESTAMP = 253402300799


@dataclass(frozen=True, slots=True)
class Routed:
    """An event and where it goes: the topic is chosen by kind, ``key`` is the record key."""

    kind: Kind
    key: bytes
    event: dict[str, Any]


def callback_event(callback: Callback, received_at: datetime) -> Routed:
    """The event of a callback received at ``received_at``."""
    if isinstance(callback, StatusCallback):
        fields = StatusFields(
            callback.message_id,
            callback.phone,
            callback.status,
            callback.ts,
            callback.err,
            callback.cnt,
            callback.message_type,
            callback.flag,
        )
        return status_event(callback.params.values, fields, received_at)
    if isinstance(callback, IncomingCallback):
        message = incoming_message(callback, received_at)
        return Routed(Kind.INCOMING, message.phone.encode(), incoming_event(message))
    call = call_confirmation(callback, received_at)
    return Routed(Kind.WAITCALL, call.phone.encode(), waitcall_event(call))


def raw_fields(params: Params) -> dict[str, Any]:
    """The parameters as received, without the signature values."""
    return _raw(params.values)


def _raw(values: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = dict(values)
    for name in SIGNATURE_FIELDS:  # a copy and a few misses cost less than a filtered copy
        raw.pop(name, None)
    return raw


def status_event(values: Mapping[str, str], fields: StatusFields, received_at: datetime) -> Routed:
    """The ``smsc.dlr/1`` event of a status's parameters and its typed fields
    (``callback.read_status``), in one pass: each field is put in its place in the event,
    which is the event ``gateway.events.delivery.dlr_event`` makes of the same report (a test
    holds the two equal); the status is the bulk of the callbacks, so no intermediate
    objects are built."""
    message_id, phone, status_code, ts, err, cnt, message_type, flag = fields
    stat = str(status_code)
    if message_type is None and flag is not None:
        message_type = flag & 0x0F
    status, final, extra_status = webhook_status(status_code)
    mail = message_type == MAIL_MESSAGE_TYPE
    done_date = values.get("time")
    received = rfc3339(received_at)
    hlr = None
    if not values.keys().isdisjoint(HLR_FIELDS):  # an HLR result: rare
        hlr = {k: v for k in HLR_FIELDS if (v := values.get(k)) is not None}
    event = {
        "schema": DLR_SCHEMA,
        "event_id": stable_event_id(
            DLR_SCHEMA, message_id, phone, stat, err, done_date, extra_status
        ),
        "occurred_at": _stamp_text(ts) or received,
        "source": SOURCE,
        "message_id": message_id,
        "phone": phone,
        "status": status,
        "final": final,
        "stat": stat,
        "err": err,
        "err_name": (mail_delivery_error_name if mail else delivery_error_name)(err),
        "received_at": received,
        "submit_date": None,
        "done_date": done_date,
        "sub": None,
        "dlvrd": None,
        "cost": values.get("cost"),
        "parts": cnt if message_type != _CALL_TYPE else None,
        "mccmnc": None,
        "message_state": None,
        "network_error_code": None,
        "flags": decode_flags(flag) if flag is not None else None,
        "extra_status": extra_status,
        "hlr": hlr,
        "raw": _raw(values),
    }
    return Routed(Kind.STATUS, message_id.encode(), event)


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


def _moment(stamp: int | None) -> datetime | None:
    """A provider time stamp (seconds) as UTC; ``None`` for none or one out of range."""
    if stamp is None or not 0 < stamp <= _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(stamp, UTC)


def _stamp_text(stamp: int | None) -> str | None:
    """A provider time stamp as RFC 3339 text (``rfc3339`` of its moment): the day's text is
    formatted once per day, the time of day from the seconds. (Each callback has a time stamp
    of its own, a few seconds before it arrives: formatting it through ``rfc3339`` would
    also evict the second that ``rfc3339`` keeps for the receiving time.)"""
    if stamp is None or not 0 < stamp <= _MAX_TIMESTAMP:
        return None
    day, second = divmod(stamp, 86400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_day_text(day)}{hour:02d}:{minute:02d}:{second:02d}.000Z"


@functools.lru_cache(maxsize=64)
def _day_text(day: int) -> str:
    """``YYYY-MM-DDT`` of a day counted from 1970-01-01."""
    return datetime.fromtimestamp(day * 86400, UTC).isoformat()[:11]
