"""The provider's side of the webhook: the requests it makes to a client handler (no I/O).

Webhook seed, "Transmitting statuses and messages to the Client handler":

- The client enters a handler URL. Its parameters after ``?`` come back by POST with every
  callback; those between a ``!`` and the ``?`` come back by GET (in the query string):
  ``https://mysite.ru/!param1&param2?param3&param4`` gets ``param1`` and ``param2`` by GET.
- ``charset`` (windows-1251 by default, koi8-r, utf-8) encodes the values; ``fmt=2`` sends
  the parameters as an XML document in the body, ``fmt=3`` as JSON; with fmt, koi8-r is
  not used (the default applies).
- ``md5``, ``sha1`` or ``crc32`` with a secret as its value is sent with the secret replaced
  by the hash of ``id:phone:status:<secret>``, ``phone:mes:to:<secret>`` or
  ``phone:ts:<secret>``.

The XML shape (a ``<data>`` root with one child per parameter) is this simulator's choice:
the seed does not show one. JSON carries the characters as themselves, in the charset. A
character the charset lacks becomes ``?`` (signature included), as a provider cannot fail.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import quote_from_bytes, unquote
from xml.sax.saxutils import escape

DEFAULT_CHARSET = "windows-1251"
_CHARSETS = ("windows-1251", "koi8-r", "utf-8")
_CONTENT_TYPES: Mapping[int, str] = MappingProxyType(
    {0: "application/x-www-form-urlencoded", 2: "application/xml", 3: "application/json"}
)
Pairs = tuple[tuple[str, str], ...]
SIGNATURE_PARAMS = ("md5", "sha1", "crc32")
# A bare CR in XML text comes back as LF (XML end-of-line handling), so it goes as a reference.
_XML_ENTITIES = MappingProxyType({"\r": "&#13;"})


class NoticeKind(StrEnum):
    STATUS = "status"
    INCOMING = "incoming"
    WAITCALL = "waitcall"


# What each kind's hash covers (webhook seed), before the secret.
SIGNED: Mapping[NoticeKind, tuple[str, ...]] = MappingProxyType(
    {
        NoticeKind.STATUS: ("id", "phone", "status"),
        NoticeKind.INCOMING: ("phone", "mes", "to"),
        NoticeKind.WAITCALL: ("phone", "ts"),
    }
)


@dataclass(frozen=True, slots=True)
class Notice:
    """What the provider reports in one callback: its kind and standard parameters."""

    kind: NoticeKind
    fields: Pairs


def status_notice(message_id: str, phone: str, status: int | str, **optional: object) -> Notice:
    """A status callback; ``optional`` holds the seed's other parameters (None left out).

    The seed passes ``err`` only when it is not zero, so an ``err`` of 0 is left out too.
    """
    if optional.get("err") in (0, "0"):
        optional.pop("err")
    fields = {"id": message_id, "phone": phone, "status": status, **optional}
    return Notice(NoticeKind.STATUS, _pairs(fields))


def incoming_notice(phone: str, mes: str, to: str, **optional: object) -> Notice:
    """An incoming SMS callback (``id``, ``sms_id``, ``smsc``, ``sent``, ``time``...)."""
    return Notice(NoticeKind.INCOMING, _pairs({"phone": phone, "mes": mes, "to": to, **optional}))


def waitcall_notice(phone: str, ts: int, **optional: object) -> Notice:
    """A call confirmation (``waitcall=1``), with the voice-menu fields if given."""
    fields = {"waitcall": 1, "phone": phone, "ts": ts, **optional}
    return Notice(NoticeKind.WAITCALL, _pairs(fields))


def _pairs(fields: Mapping[str, object]) -> Pairs:
    return tuple((name, str(value)) for name, value in fields.items() if value is not None)


@dataclass(frozen=True, slots=True)
class HandlerUrl:
    """A handler address as a client enters it in the provider's settings."""

    base: str
    get_params: Pairs
    post_params: Pairs

    @classmethod
    def parse(cls, url: str) -> HandlerUrl:
        before, _, post = url.partition("?")
        base, _, get = before.partition("!")
        return cls(base, _url_pairs(get), _url_pairs(post))

    def param(self, name: str) -> str | None:
        found = [v for k, v in (*self.get_params, *self.post_params) if k == name]
        return found[-1] if found else None

    @property
    def fmt(self) -> int:
        fmt = self.param("fmt")
        return int(fmt) if fmt in {"2", "3"} else 0

    @property
    def charset(self) -> str:
        name = (self.param("charset") or DEFAULT_CHARSET).lower()
        charset = name if name in _CHARSETS else DEFAULT_CHARSET
        return DEFAULT_CHARSET if self.fmt and charset == "koi8-r" else charset


def _url_pairs(text: str) -> Pairs:
    pairs = []
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if name:
            pairs.append((unquote(name), unquote(value)))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One HTTP request of the provider to the handler."""

    url: str
    body: bytes
    content_type: str
    method: str = "POST"


def build_request(handler: HandlerUrl, notice: Notice) -> WebhookRequest:
    """The request carrying ``notice`` to ``handler``, encoded and signed as configured."""
    charset = handler.charset
    get = _signed(handler.get_params, notice, charset)
    post = (*notice.fields, *_signed(handler.post_params, notice, charset))
    query = _form(get, charset)
    url = f"{handler.base}?{query}" if query else handler.base
    return WebhookRequest(url, _body(handler.fmt, post, charset), _CONTENT_TYPES[handler.fmt])


def _signed(params: Pairs, notice: Notice, charset: str) -> Pairs:
    """The URL's parameters, a signature parameter's secret replaced by the hash."""
    values = dict(notice.fields)
    signed = []
    for name, value in params:
        if name in SIGNATURE_PARAMS:
            text = ":".join((*(values.get(f, "") for f in SIGNED[notice.kind]), value))
            signed.append((name, signature(name, text.encode(charset, "replace"))))
        else:
            signed.append((name, value))
    return tuple(signed)


def signature(algorithm: str, data: bytes) -> str:
    """md5 or sha1 as lower-case hex (PHP's md5()/sha1()), crc32 as PHP's crc32() decimal."""
    if algorithm == "md5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if algorithm == "sha1":
        return hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return str(zlib.crc32(data))


def _form(pairs: Pairs, charset: str) -> str:
    return "&".join(
        f"{quote_from_bytes(k.encode(charset, 'replace'))}="
        f"{quote_from_bytes(v.encode(charset, 'replace'))}"
        for k, v in pairs
    )


def _body(fmt: int, pairs: Pairs, charset: str) -> bytes:
    if fmt == 3:
        return json.dumps(dict(pairs), ensure_ascii=False).encode(charset, "replace")
    if fmt == 2:
        children = "".join(f"<{k}>{escape(v, _XML_ENTITIES)}</{k}>" for k, v in pairs)
        xml = f'<?xml version="1.0" encoding="{charset}"?>\n<data>{children}</data>'
        return xml.encode(charset, "replace")
    return _form(pairs, charset).encode("ascii")
