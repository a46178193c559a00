"""The ``fmt=3`` (JSON) answers of send.php, status.php and balance.php, read without I/O.

An answer with ``error_code`` is an API error whatever the HTTP status (reference 0, "HTTP
status"); :func:`read_answer` raises it as its typed error. Numbers the provider sends as
strings (``cost``, ``balance``) are kept as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import orjson

from .errors import HttpTransportError, ProviderApiError, provider_error

# Fields of a status answer kept in a report's ``raw``; the text and the client's comment
# (all=1) never go into events.
_PRIVATE_FIELDS = frozenset({"message", "comment"})


@dataclass(frozen=True, slots=True)
class SendReply:
    """send.php accepted the request: one ``id`` for every phone, ``cnt`` SMS in all."""

    message_id: int
    count: int
    cost: Decimal | None = None
    balance: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """status.php's answer for one (message id, phone)."""

    message_id: str
    phone: str
    status: int
    err: int | None = None
    last_timestamp: int | None = None
    last_date: str | None = None
    send_date: str | None = None
    flag: int | None = None
    cost: str | None = None
    parts: int | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Balance:
    balance: Decimal
    currency: str | None = None


ErrorHint = Callable[[int], float | None]


def read_answer(body: bytes, script: str, hint: ErrorHint) -> Any:
    """The JSON document of an answer; raises the typed error of an ``error_code`` answer
    (``hint(code)`` gives its retry-after) and :class:`HttpTransportError` for a body that
    is not JSON (the provider may have acted on the request)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        shown = body[:60].decode("utf-8", "replace")
        raise HttpTransportError(
            f"{script}.php answered something other than JSON: {shown!r}", maybe_processed=True
        ) from exc
    if isinstance(document, dict) and "error_code" in document:
        raise _api_error(document, script, hint)
    return document


def _api_error(document: Mapping[str, Any], script: str, hint: ErrorHint) -> ProviderApiError:
    code = _int(document.get("error_code"))
    if code is None:
        code = 0
    return provider_error(
        code,
        str(document.get("error", "")),
        script=script,
        message_id=_int(document.get("id")),
        retry_after_seconds=hint(code),
    )


def parse_send(document: Any) -> SendReply:
    """``{"id": 63, "cnt": 1, "cost": "3.8", "balance": "286.55"}`` (cost=3)."""
    if not isinstance(document, dict):
        raise _unexpected("send", document)
    message_id, count = _int(document.get("id")), _int(document.get("cnt"))
    if message_id is None or count is None:
        raise _unexpected("send", document)
    return SendReply(
        message_id, count, _decimal(document.get("cost")), _decimal(document.get("balance"))
    )


def parse_status(document: Any, message_id: str, phone: str) -> MessageStatus:
    """The answer of a single-id query (it names neither the id nor the phone)."""
    if not isinstance(document, dict):
        raise _unexpected("status", document)
    return _status(document, message_id, phone)


def parse_statuses(document: Any) -> list[MessageStatus]:
    """The answer of a multi-id query: a list with ``id`` and ``phone`` in every item."""
    if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
        raise _unexpected("status", document)
    return [_status(item, str(item.get("id", "")), str(item.get("phone", ""))) for item in document]


def parse_balance(document: Any) -> Balance:
    """``{"balance": "1871.62"}``, with ``currency`` when asked for (cur=1)."""
    balance = _decimal(document.get("balance")) if isinstance(document, dict) else None
    if balance is None:
        raise _unexpected("balance", document)
    currency = document.get("currency")
    return Balance(balance, str(currency) if currency is not None else None)


def _status(item: Mapping[str, Any], message_id: str, phone: str) -> MessageStatus:
    status = _int(item.get("status"))
    if status is None or not message_id:
        raise _unexpected("status", item)
    cost = item.get("cost")
    return MessageStatus(
        message_id=message_id,
        phone=phone.lstrip("+"),
        status=status,
        err=_int(item.get("err")),
        last_timestamp=_int(item.get("last_timestamp")),
        last_date=_str(item.get("last_date")),
        send_date=_str(item.get("send_date")),
        flag=_int(item.get("flag")),
        cost=str(cost) if cost is not None else None,
        parts=_int(item.get("sms_cnt")),
        raw=MappingProxyType({k: v for k, v in item.items() if k not in _PRIVATE_FIELDS}),
    )


def _unexpected(script: str, document: Any) -> HttpTransportError:
    shown = orjson.dumps(document)[:80].decode("utf-8", "replace")
    return HttpTransportError(f"{script}.php answer not understood: {shown}", maybe_processed=True)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
