"""The simulator's HTTP API answers in ``fmt`` 0 (text), 1 (numbers), 2 (XML) and 3 (JSON).

Shapes follow reference/smsc-http-api.md: send.php 1.2 and 1.3 (errors of codes 3, 6, 7 and 8
carry the id), status.php 2.2 (a multi-id query answers a list, one line or element per
message), balance.php 3.1. Where the reference has no example (multi-id answers in fmt 0 and
2, balance in fmt 0 and 2) the shape is this simulator's choice, kept close to its siblings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from xml.sax.saxutils import escape

import orjson

from .http_api_centre import DESCRIPTIONS, ApiError, SendAccepted

CONTENT_TYPES: Mapping[int, str] = MappingProxyType(
    {0: "text/plain", 1: "text/plain", 2: "application/xml", 3: "application/json"}
)
CHARSETS = ("windows-1251", "utf-8", "koi8-r")
DEFAULT_CHARSET = "windows-1251"


def content_type(fmt: int, charset: str) -> str:
    return f"{CONTENT_TYPES[fmt]}; charset={charset}"


def render_error(fmt: int, error: ApiError) -> str:
    description = error.description or DESCRIPTIONS.get(error.code, "error")
    with_id = error.message_id is not None
    if fmt == 3:
        doc: dict[str, Any] = {"error": description, "error_code": error.code}
        return _json(doc | {"id": error.message_id} if with_id else doc)
    if fmt == 2:
        tail = f"<id>{error.message_id}</id>" if with_id else ""
        code = f"<error_code>{error.code}</error_code>"
        return f"<result><error>{escape(description)}</error>{code}{tail}</result>"
    if fmt == 1:
        return f"{error.message_id if with_id else 0},-{error.code}"
    tail = f", ID - {error.message_id}" if with_id else ""
    return f"ERROR = {error.code} ({description}){tail}"


def render_send(fmt: int, result: SendAccepted, cost_mode: str) -> str:
    """send.php's success; ``cost_mode`` is the request's ``cost`` (0..3)."""
    fields: dict[str, Any] = {"id": result.message_id, "cnt": result.count}
    if cost_mode == "1":
        fields = {"cost": f"{result.cost:.2f}", "cnt": result.count}
    elif cost_mode in {"2", "3"}:
        fields["cost"] = f"{result.cost:.2f}"
        if cost_mode == "3":
            fields["balance"] = f"{result.balance:.2f}"
    if fmt == 3:
        return _json(fields)
    if fmt == 2:
        return "<result>" + _xml(fields) + "</result>"
    if fmt == 1:
        return ",".join(str(v) for v in fields.values())
    if cost_mode == "1":
        return f"{fields['cost']}, {result.count} SMS"
    extra = "".join(f", {k.upper()} - {fields[k]}" for k in ("cost", "balance") if k in fields)
    return f"OK - {result.count} SMS, ID - {result.message_id}{extra}"


def render_status(fmt: int, answer: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """status.php's answer: one message (a mapping) or several (a list)."""
    if isinstance(answer, Mapping) and "result" in answer:  # del=1
        return _json(answer) if fmt == 3 else ("<result>OK</result>" if fmt == 2 else "OK")
    if fmt == 3:
        return _json(answer)
    items = [answer] if isinstance(answer, Mapping) else list(answer)
    if fmt == 2:
        elements = "".join(f"<sms>{_xml(item)}</sms>" for item in items)
        return elements if isinstance(answer, Mapping) else f"<list>{elements}</list>"
    if fmt == 1:
        return "\n".join(_status_numbers(item) for item in items)
    return "\n".join(_status_text(item) for item in items)


def render_balance(fmt: int, balance: Decimal, currency: str | None) -> str:
    fields = {"balance": f"{balance:.2f}"} | ({"currency": currency} if currency else {})
    if fmt == 3:
        return _json(fields)
    if fmt == 2:
        return "<balance>" + _xml(fields) + "</balance>"
    return ",".join(fields.values())


def _status_numbers(item: Mapping[str, Any]) -> str:
    keys = (
        *("status", "last_timestamp", "err", "send_timestamp", "phone", "cost", "sender_id"),
        *("status_name", "message", "comment"),
    )
    return ",".join(str(item[k]) for k in keys if k in item)


def _status_text(item: Mapping[str, Any]) -> str:
    if item["status"] == -3:
        return "Status = -3"
    head = f"Status = {item['status']}, check_time = {item['last_date']}, err = {item['err']}"
    extra = ("send_date", "phone", "cost", "sender_id", "status_name", "message", "comment", "type")
    return head + "".join(f", {k} = {item[k]}" for k in extra if k in item)


def _xml(fields: Mapping[str, Any]) -> str:
    return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())


def _json(document: object) -> str:
    return orjson.dumps(document).decode()
