"""Reading a provider callback off the wire: its parameters, charset, format and kind.

No I/O and no HTTP library: the adapter hands over the method, the raw query string, the
body and its content type. The rules are the webhook seed's ("Transmitting statuses and
messages to the Client handler"):

- Parameters come by POST, form-encoded; with ``fmt=2`` (XML) or ``fmt=3`` (JSON) in the
  handler URL they come as an XML or JSON document in the body. Parameters the handler URL
  lists between a ``!`` and the ``?`` come by GET, in the query string. Both are read; on a
  name present in both, the body wins (the provider's own parameters always come by POST).
- ``charset`` in the handler URL picks the encoding of the values: windows-1251 (the
  default), koi8-r or utf-8. It comes back as a parameter itself, so it is read from the
  still-encoded parameters first (charset names are ASCII in all three encodings). "When
  transmitting the fmt parameter, the koi8-r encoding is not used": then the default,
  windows-1251, applies. A ``Content-Type`` charset is not used: the seed names none, and
  the URL parameter is the contract.
- The format is told by a ``fmt`` GET parameter when there is one, else by the body's first
  byte (``{`` JSON, ``<`` XML, anything else form), because the provider's XML or JSON may
  well arrive labelled as a form.
- The kind is told exactly as the seed's sample handler does: ``mes`` present means an
  incoming SMS, else ``waitcall`` present means a call confirmation, else a status. Present
  means present, even empty (PHP's ``isset``); a JSON ``null`` counts as absent.

Every input gives :class:`Params` or a :class:`Rejection` with a reason code; nothing raises.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote_plus, unquote_to_bytes

import orjson

from gateway.settings.ingress import DEFAULT_CHARSET, canonical_charset

_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,32})[\"']")
# A DTD is the door to entity expansion; the provider has no use for one, so none is parsed.
_XML_DTD = re.compile(r"<!\s*(doctype|entity)", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"


class Kind(StrEnum):
    STATUS = "status"
    INCOMING = "incoming"
    WAITCALL = "waitcall"


class BodyFormat(IntEnum):
    """The seed's ``fmt`` values for the handler: 0 form (the default), 2 XML, 3 JSON."""

    FORM = 0
    XML = 2
    JSON = 3


class CallbackRequest(NamedTuple):
    """A callback as it arrived over HTTP; ``query`` is the raw query string, no ``?``. (A
    tuple: one is built per callback.)"""

    method: str
    query: bytes
    body: bytes
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Params:
    """The decoded parameters of one callback (GET and POST merged) and how they came."""

    kind: Kind
    values: Mapping[str, str]
    charset: str
    fmt: BodyFormat


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a callback cannot be used; ``params`` when it could be read (to check its
    signature), ``None`` when it could not be read at all."""

    code: str
    message: str
    params: Params | None = None


class _UnreadableError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.lru_cache(maxsize=64)  # a few names in practice; the size bounds the odd ones
def decode_params(
    request: CallbackRequest, default_charset: str = DEFAULT_CHARSET
) -> Params | Rejection:
    """The callback's parameters, or why they cannot be read."""
    try:
        return _decode(request, canonical_charset(default_charset) or DEFAULT_CHARSET)
    except _UnreadableError as exc:
        return Rejection(exc.code, exc.message)


def _decode(request: CallbackRequest, default_charset: str) -> Params:
    query = dict(form_pairs(request.query)) if request.query else {}
    body = b"" if request.method.upper() in {"GET", "HEAD"} else request.body
    fmt = _body_format(query.get(b"fmt"), body)
    if fmt is BodyFormat.FORM:
        posted_charset = _form_param(body, b"charset")
        charset = _pick_charset(default_charset, posted_charset, query.get(b"charset"))
        fields = _decode_form(body, charset)
    else:
        charset, fields = _document(fmt, body, query, default_charset)
    # The body wins on a name sent both ways; most callbacks have no GET parameters at all.
    values = _decode_pairs(query, charset) | fields if query else fields
    return Params(kind_of(values), MappingProxyType(values), charset, fmt)


def form_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    """``application/x-www-form-urlencoded`` pairs, still encoded in the callback's charset.

    A name without ``=`` has an empty value; pairs without a name are skipped, as PHP does.
    """
    pairs = []
    for part in data.split(b"&"):
        name, _, value = part.partition(b"=")
        name = _unquote(name)
        if name:
            pairs.append((name, _unquote(value)))
    return pairs


def _form_param(data: bytes, wanted: bytes) -> bytes | None:
    """One parameter of a form, still encoded (the last one of that name, as PHP keeps).
    Only a name written plainly is looked for; the provider has no reason to escape one."""
    found = None
    if wanted in data:
        for name, value in form_pairs(data):
            if name == wanted:
                found = value
    return found


def _decode_form(data: bytes, charset: str) -> dict[str, str]:
    """A form's parameters decoded. An ASCII body (percent-encoded, the usual) is split as
    text, and only the parts holding escapes are decoded; raw bytes take the slow way."""
    if not data.isascii():
        return _decode_pairs(dict(form_pairs(data)), charset)
    text = data.decode("ascii")
    if "%" not in text and "+" not in text:  # nothing escaped anywhere: split only
        pairs = (part.partition("=") for part in text.split("&"))
        return {name: value for name, _, value in pairs if name}
    values = {}
    try:
        for part in text.split("&"):
            name, _, value = part.partition("=")
            name = _unquote_text(name, charset)
            if name:
                values[name] = _unquote_text(value, charset)
    except UnicodeDecodeError:
        raise _UnreadableError("undecodable_text", f"a parameter is not valid {charset}") from None
    return values


def _unquote_text(text: str, charset: str) -> str:
    if "%" in text or "+" in text:
        return unquote_plus(text, encoding=charset, errors="strict")
    return text


def _unquote(data: bytes) -> bytes:
    # Most parameters (names, numbers) have nothing to unquote; they skip the work.
    if b"%" in data or b"+" in data:
        return unquote_to_bytes(data.replace(b"+", b" "))
    return data


def _body_format(fmt: bytes | None, body: bytes) -> BodyFormat:
    if fmt is not None and fmt.strip() in {b"2", b"3"}:
        return BodyFormat(int(fmt))
    start = body.removeprefix(_UTF8_BOM).lstrip()[:1]
    if start == b"{":
        return BodyFormat.JSON
    if start == b"<":
        return BodyFormat.XML
    return BodyFormat.FORM


def _pick_charset(default: str, *candidates: bytes | str | None) -> str:
    """The first candidate given, as a supported charset, else ``default``."""
    for candidate in candidates:
        if candidate is None:
            continue
        name = candidate.decode("latin-1") if isinstance(candidate, bytes) else candidate
        charset = canonical_charset(name)
        if charset is None:
            raise _UnreadableError("unsupported_charset", f"charset {name[:40]!r} is not supported")
        return charset
    return default


def _decode_pairs(pairs: Mapping[bytes, bytes], charset: str) -> dict[str, str]:
    try:
        return {name.decode(charset): value.decode(charset) for name, value in pairs.items()}
    except UnicodeDecodeError:
        raise _UnreadableError("undecodable_text", f"a parameter is not valid {charset}") from None


def _document(
    fmt: BodyFormat, body: bytes, query: Mapping[bytes, bytes], default_charset: str
) -> tuple[str, dict[str, str]]:
    """The charset and fields of an XML or JSON body.

    The charset is the body's ``charset`` field, else the GET one, else the XML declaration,
    else the default; koi8-r is not used with fmt (seed), so it means windows-1251. The
    field's value is ASCII in every allowed charset, and latin-1 maps each byte to one
    character, so a first reading as latin-1 finds it whatever the real charset is; for an
    ASCII body that reading is already the right one.
    """
    first = _document_fields(fmt, body, "latin-1")
    declared = None
    if fmt is BodyFormat.XML and (found := _XML_ENCODING.match(body)):
        declared = found.group(1)
    charset = _pick_charset(default_charset, first.get("charset"), query.get(b"charset"), declared)
    if charset == "koi8-r":
        charset = DEFAULT_CHARSET
    if body.isascii():
        return charset, first
    return charset, _document_fields(fmt, body, charset)


def _document_fields(fmt: BodyFormat, body: bytes, charset: str) -> dict[str, str]:
    try:
        text = body.decode("utf-8-sig" if charset == "utf-8" else charset)
    except UnicodeDecodeError:
        raise _UnreadableError("undecodable_text", f"the body is not valid {charset}") from None
    return _json_fields(text) if fmt is BodyFormat.JSON else _xml_fields(text)


def _json_fields(text: str) -> dict[str, str]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _UnreadableError("invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _UnreadableError("invalid_json", "the JSON body is not an object")
    # null is absent, as for PHP's isset.
    return {name: _scalar(name, raw) for name, raw in document.items() if raw is not None}


def _scalar(name: str, raw: object) -> str:
    """A JSON value as the parameter string it stands for."""
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise _UnreadableError("unsupported_value", f"parameter {name[:40]!r} is not a plain value")


def _xml_fields(text: str) -> dict[str, str]:
    """Each child of the root element is a parameter: its tag the name, its text the value."""
    if _XML_DTD.search(text):
        raise _UnreadableError("invalid_xml", "an XML body with a DTD is refused")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD (checked above), so no entities
    except (ET.ParseError, ValueError, LookupError) as exc:
        raise _UnreadableError("invalid_xml", f"the body is not XML: {exc}") from None
    fields = {}
    for child in root:
        if len(child):
            raise _UnreadableError("unsupported_value", f"element {child.tag[:40]!r} is not plain")
        fields[child.tag] = child.text or ""
    return fields


def kind_of(values: Mapping[str, str]) -> Kind:
    """The kind of a callback with these parameters."""
    # The seed's handler: isset($_POST["mes"]) first, then isset($_POST["waitcall"]).
    if "mes" in values:
        return Kind.INCOMING
    if "waitcall" in values:
        return Kind.WAITCALL
    return Kind.STATUS
