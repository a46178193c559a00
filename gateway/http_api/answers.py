"""The ``fmt=3`` answers of ``get.php?get_answers=1`` and ``wait_call.php``, read without I/O.

- get_answers (seed 001): a list of ``{"id", "received", "phone", "message", "to_phone",
  "sent"}``; ``received`` and ``sent`` are ``DD.MM.YYYY hh:mm:ss`` in the account's time zone.
- wait_call (webhook seed): ``{"phone": <the number to call>, "all_phones": [...]}``.

A document of another shape is an :class:`~.errors.HttpTransportError` (the provider may
have acted on the request), as for the other scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any

import orjson

from .errors import HttpTransportError

_DATE_FORMAT = "%d.%m.%Y %H:%M:%S"


@dataclass(frozen=True, slots=True)
class IncomingAnswer:
    """One incoming SMS listed by get.php; ``incoming_id`` in decimal, phones without ``+``."""

    incoming_id: int
    phone: str
    message: str
    to_phone: str
    received: str | None
    sent: str | None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def received_at(self, zone: tzinfo) -> datetime | None:
        """``received`` as an aware time, read in the account's zone; None if unreadable."""
        return provider_time(self.received, zone)


@dataclass(frozen=True, slots=True)
class CallNumber:
    """wait_call.php's answer: the number the subscriber must call, and all it could be."""

    call_to: str
    all_phones: tuple[str, ...]


def parse_answers(document: Any) -> list[IncomingAnswer]:
    """get_answers' list, in the provider's order (an empty list when nothing is new)."""
    if not isinstance(document, list) or not all(isinstance(i, dict) for i in document):
        raise _unexpected("get", document)
    return [_answer(item) for item in document]


def parse_call_number(document: Any) -> CallNumber:
    """wait_call's answer; the number to call is kept first in ``all_phones`` too."""
    if not isinstance(document, dict):
        raise _unexpected("wait_call", document)
    call_to, listed = document.get("phone"), document.get("all_phones")
    if not isinstance(call_to, str | int) or not str(call_to).strip():
        raise _unexpected("wait_call", document)
    if listed is None:
        listed = [call_to]
    if not isinstance(listed, list) or not all(isinstance(p, str | int) for p in listed):
        raise _unexpected("wait_call", document)
    number = str(call_to).strip()
    return CallNumber(number, tuple(str(p).strip() for p in listed))


def provider_time(text: str | None, zone: tzinfo) -> datetime | None:
    """A provider date (``DD.MM.YYYY hh:mm:ss``) in ``zone``; None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), _DATE_FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None


def _answer(item: Mapping[str, Any]) -> IncomingAnswer:
    incoming_id, phone = _decimal_id(item.get("id")), item.get("phone")
    if incoming_id is None or not isinstance(phone, str | int) or not str(phone).strip("+ "):
        raise _unexpected("get", item)
    return IncomingAnswer(
        incoming_id=incoming_id,
        phone=str(phone).strip().lstrip("+"),
        message=str(item.get("message", "")),
        to_phone=str(item.get("to_phone", "")).strip().lstrip("+"),
        received=_text(item.get("received")),
        sent=_text(item.get("sent")),
        raw=MappingProxyType(dict(item)),
    )


def _decimal_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _unexpected(script: str, document: Any) -> HttpTransportError:
    shown = orjson.dumps(document)[:80].decode("utf-8", "replace")
    return HttpTransportError(f"{script}.php answer not understood: {shown}", maybe_processed=True)
