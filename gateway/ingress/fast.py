"""The usual callback, from body to event in one pass: a form POST of plain names, no GET
parameters, an authentic signature (no I/O).

Almost every callback the provider sends looks alike: ``application/x-www-form-urlencoded``
in the body, ASCII on the wire (values percent-encoded in the callback's charset), names
written plainly, nothing in the query string, a signature that matches. :func:`usual_event`
reads such a body straight into the parameter values, checks the signature and builds the
event; anything else, and anything it would have to reject, gives ``None``, and the general
path (:mod:`gateway.ingress.params`, :mod:`gateway.ingress.callback`) reads the callback and
says what is wrong. From the parameters on, both paths share the mapping
(:mod:`gateway.ingress.mapping`): a status goes straight from its values to its event
(``status_event``, the general path's mapping of a status too); an incoming SMS and a call
confirmation go through their typed callbacks, as on the general path.

It must agree with the general path on every body it accepts: the same values, charset and
kind, and so the same event. ``tests/ingress/test_ingress_fast_paths.py`` holds the two
equal over generated bodies in every charset.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from urllib.parse import unquote_plus

from gateway.settings.ingress import canonical_charset

from .callback import interpret, read_status
from .mapping import Routed, callback_event, status_event
from .params import BodyFormat, CallbackRequest, Kind, Params, Rejection, kind_of
from .signature import Verdict, check_values


def usual_event(
    request: CallbackRequest, default_charset: str, secret: str, received_at: datetime
) -> Routed | None:
    """The event of a usual, authentic, usable callback; ``None`` for any other (the general
    path reads it). ``default_charset`` is a canonical name (``canonical_charset``)."""
    found = read_usual(request, default_charset, secret)
    if found is None:
        return None
    kind, values, charset = found
    if kind is Kind.STATUS:
        fields = read_status(values)
        return None if fields is None else status_event(values, fields, received_at)
    callback = interpret(Params(kind, MappingProxyType(values), charset, BodyFormat.FORM))
    return None if isinstance(callback, Rejection) else callback_event(callback, received_at)


def read_usual(
    request: CallbackRequest, default_charset: str, secret: str
) -> tuple[Kind, dict[str, str], str] | None:
    """The kind, parameters and charset of a usual, authentic callback; ``None`` for any
    other."""
    body = request.body
    # A form's first byte is a name's; "{", "<", a BOM or white space start a document.
    if request.query or request.method != "POST" or not body[:1].isalpha() or not body.isascii():
        return None
    text = body.decode("ascii")
    if "%" in text or "+" in text:
        found = _escaped_form(text, default_charset)
    else:
        found = _plain_form(text, default_charset)
    if found is None:
        return None
    values, charset = found
    kind = kind_of(values)
    if check_values(kind, values, charset, secret).verdict is not Verdict.VALID:
        return None
    return kind, values, charset


def _plain_form(text: str, default_charset: str) -> tuple[dict[str, str], str] | None:
    """A form with nothing escaped: splitting is all there is to do."""
    pairs = (part.partition("=") for part in text.split("&"))
    values = {name: value for name, _, value in pairs if name}
    charset = _charset(values.get("charset"), default_charset)
    return None if charset is None else (values, charset)


def _escaped_form(text: str, default_charset: str) -> tuple[dict[str, str], str] | None:
    """A form with escaped values (names must be plain), decoded in its charset."""
    raw = {}
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            return None
        if name:
            raw[name] = value
    named = raw.get("charset")
    if named is not None and ("%" in named or "+" in named):
        return None
    charset = _charset(named, default_charset)
    if charset is None:
        return None
    try:
        values = {
            name: unquote_plus(value, encoding=charset, errors="strict")
            if "%" in value or "+" in value
            else value
            for name, value in raw.items()
        }
    except UnicodeDecodeError:
        return None
    return values, charset


def _charset(named: str | None, default_charset: str) -> str | None:
    """The callback's charset; ``None`` when it names one that is not supported."""
    return default_charset if named is None else canonical_charset(named)
