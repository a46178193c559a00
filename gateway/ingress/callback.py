"""The three callbacks of the webhook seed as typed values (no I/O).

Every parameter the seed lists has a field; parameters it does not list (those the handler
URL adds) are kept in ``extras``, and every parameter as received stays in ``params``.

- Status: id, phone, status, time, ts, err, syserr, cnt, type, cost, flag, sender, dtmf,
  cmt; the HLR fields imsi, msc, mcc, mnc, cn, net, rcn, rnet; md5/sha1/crc32.
- Incoming SMS: id, sms_id, phone, mes, to, smsc, sent, time; md5/sha1/crc32.
- Call confirmation: waitcall, phone, ts; md5/sha1/crc32.
- Voice menu (calls): calltime, callmenu, ringtime, read on any kind.

Required: a status needs id, phone and a numeric status; an incoming SMS a phone; a call
confirmation a phone and a numeric ts. Numbers must be integers where the seed gives one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from gateway.smpp.receipt import normalize_message_id

from .params import CallbackRequest, Kind, Params, Rejection, decode_params

HLR_FIELDS = ("imsi", "msc", "mcc", "mnc", "cn", "net", "rcn", "rnet")
VOICE_MENU_FIELDS = ("calltime", "callmenu", "ringtime")
SIGNATURE_FIELDS = ("md5", "sha1", "crc32")
CONTROL_FIELDS = ("charset", "fmt", *SIGNATURE_FIELDS)
STATUS_FIELDS = (
    *("id", "phone", "status", "time", "ts", "err", "syserr", "cnt", "type", "cost", "flag"),
    *("sender", "dtmf", "cmt", *HLR_FIELDS),
)
INCOMING_FIELDS = ("id", "sms_id", "phone", "mes", "to", "smsc", "sent", "time")
WAITCALL_FIELDS = ("waitcall", "phone", "ts")
_KNOWN: Mapping[Kind, frozenset[str]] = MappingProxyType(
    {
        kind: frozenset((*fields, *VOICE_MENU_FIELDS, *CONTROL_FIELDS))
        for kind, fields in (
            (Kind.STATUS, STATUS_FIELDS),
            (Kind.INCOMING, INCOMING_FIELDS),
            (Kind.WAITCALL, WAITCALL_FIELDS),
        )
    }
)
_MAX_DIGITS = 18
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class VoiceMenu:
    """Voice menu fields of a call, as the provider wrote them (their units are unstated)."""

    calltime: str | None = None
    callmenu: str | None = None
    ringtime: str | None = None


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """A message status (delivery report, HLR result, call outcome)."""

    params: Params
    message_id: str
    phone: str
    status: int
    time: str | None
    ts: int | None
    err: int  # the seed: "Passed if not equal to zero", so absent means 0
    syserr: str | None
    cnt: int | None  # parts of an SMS, or seconds of a call
    message_type: int | None
    cost: str | None
    flag: int | None
    sender: str | None
    dtmf: str | None
    cmt: str | None
    hlr: Mapping[str, str]
    voice: VoiceMenu | None
    extras: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class IncomingCallback:
    """An SMS a subscriber sent."""

    params: Params
    incoming_id: str | None
    sms_id: str | None
    phone: str
    mes: str
    to: str | None
    smsc: str | None
    sent: int | None
    time: int | None
    voice: VoiceMenu | None
    extras: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class WaitcallCallback:
    """A subscriber's call confirming their number."""

    params: Params
    waitcall: str
    phone: str
    ts: int
    voice: VoiceMenu | None
    extras: Mapping[str, str]


Callback = StatusCallback | IncomingCallback | WaitcallCallback


class _InvalidFieldError(Exception):
    """A parameter's value cannot be used; ``code`` is the dead letter's reason code (caught
    here: :func:`interpret` makes it a :class:`Rejection`, :func:`read_status` a ``None``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_callback(request: CallbackRequest, default_charset: str) -> Callback | Rejection:
    """The callback a request carries, or why it cannot be used; never raises."""
    params = decode_params(request, default_charset)
    if isinstance(params, Rejection):
        return params
    return interpret(params)


def interpret(params: Params) -> Callback | Rejection:
    """The typed callback of decoded parameters, or a rejection that keeps them."""
    try:
        if params.kind is Kind.INCOMING:
            return _incoming(params)
        if params.kind is Kind.WAITCALL:
            return _waitcall(params)
        return _status(params)
    except _InvalidFieldError as exc:
        return Rejection(exc.code, exc.message, params)


class StatusFields(NamedTuple):
    """The typed fields of a status that its event is made of (a tuple: built per callback
    on the hot path, where a frozen dataclass costs twice as much)."""

    message_id: str
    phone: str
    status: int
    ts: int | None
    err: int
    cnt: int | None
    message_type: int | None
    flag: int | None


def read_status(values: Mapping[str, str]) -> StatusFields | None:
    """A status's typed fields, by the rules of :func:`interpret`; ``None`` when one of
    them is refused (:func:`interpret` says why)."""
    try:
        return _status_fields(values)
    except _InvalidFieldError:
        return None


def _status_fields(values: Mapping[str, str]) -> StatusFields:
    return StatusFields(
        normalize_message_id(_required(values, "id")),
        _phone(_required(values, "phone")),
        _required_int(values, "status"),
        _optional_int(values, "ts"),
        _optional_int(values, "err") or 0,
        _optional_int(values, "cnt"),
        _optional_int(values, "type"),
        _optional_int(values, "flag"),
    )


def _status(params: Params) -> StatusCallback:
    values = params.values
    get = values.get
    fields = _status_fields(values)
    return StatusCallback(
        params=params,
        message_id=fields.message_id,
        phone=fields.phone,
        status=fields.status,
        time=get("time"),
        ts=fields.ts,
        err=fields.err,
        syserr=get("syserr"),
        cnt=fields.cnt,
        message_type=fields.message_type,
        cost=get("cost"),
        flag=fields.flag,
        sender=get("sender"),
        dtmf=get("dtmf"),
        cmt=get("cmt"),
        hlr=_present(values, HLR_FIELDS),
        voice=_voice(values),
        extras=_extras(params),
    )


def _incoming(params: Params) -> IncomingCallback:
    values = params.values
    get = values.get
    return IncomingCallback(
        params=params,
        incoming_id=get("id"),
        sms_id=get("sms_id"),
        phone=_phone(_required(values, "phone")),
        mes=values["mes"],
        to=get("to"),
        smsc=get("smsc"),
        sent=_optional_int(values, "sent"),
        time=_optional_int(values, "time"),
        voice=_voice(values),
        extras=_extras(params),
    )


def _waitcall(params: Params) -> WaitcallCallback:
    values = params.values
    return WaitcallCallback(
        params=params,
        waitcall=values["waitcall"],
        phone=_phone(_required(values, "phone")),
        ts=_required_int(values, "ts"),
        voice=_voice(values),
        extras=_extras(params),
    )


# Typed reads of parameter values; a bad value raises _InvalidFieldError.


def _required(values: Mapping[str, str], name: str) -> str:
    value = values.get(name, "").strip()
    if not value:
        raise _InvalidFieldError("missing_field", f"the {name} parameter is missing or empty")
    return value


def _optional_int(values: Mapping[str, str], name: str) -> int | None:
    value = values.get(name)
    if value is None:
        return None
    if value.isdigit() and value.isascii() and len(value) <= _MAX_DIGITS:  # the usual
        return int(value)
    value = value.strip()
    return _integer(name, value) if value else None


def _required_int(values: Mapping[str, str], name: str) -> int:
    return _integer(name, _required(values, name))


def _integer(name: str, value: str) -> int:
    plain = value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS  # the usual
    if not plain and not _INTEGER.fullmatch(value):
        raise _InvalidFieldError("invalid_field", f"the {name} parameter is not an integer")
    return int(value)


def _phone(value: str) -> str:
    phone = value.lstrip("+")
    if not phone:
        raise _InvalidFieldError("invalid_field", "the phone parameter holds no number")
    return phone


_NOTHING: Mapping[str, str] = MappingProxyType({})


def _present(values: Mapping[str, str], names: tuple[str, ...]) -> Mapping[str, str]:
    """The parameters of ``names`` that were sent, in the order of ``names``."""
    if values.keys().isdisjoint(names):  # the usual case, without a loop in Python
        return _NOTHING
    return MappingProxyType({k: v for k in names if (v := values.get(k)) is not None})


def _voice(values: Mapping[str, str]) -> VoiceMenu | None:
    if values.keys().isdisjoint(VOICE_MENU_FIELDS):
        return None
    get = values.get
    return VoiceMenu(get("calltime"), get("callmenu"), get("ringtime"))


def _extras(params: Params) -> Mapping[str, str]:
    known = _KNOWN[params.kind]
    if params.values.keys() <= known:  # the usual case: nothing beyond the seed's fields
        return _NOTHING
    return MappingProxyType({k: v for k, v in params.values.items() if k not in known})
