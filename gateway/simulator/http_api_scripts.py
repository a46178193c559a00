"""What the simulator's account scripts share: receive_phones.php, downloads.php, phones.php.

Each script is a :class:`ScriptHandler` the HTTP API server dispatches to once the login is
authenticated and has a concurrency slot (error 9 at 15 in flight, as for every script). A
handler judges the request and answers a :class:`ScriptReply` or an
:class:`~.http_api_centre.ApiError`; it keeps its own "identical requests a minute" rule with
:class:`IdenticalRequests`. The renderers below give a script's answer in ``fmt`` 0 to 3 the
way the seeds show them: ``{"result": "OK"}`` / ``OK``, ``{"id": N}`` / ``ID = N``, lists as
JSON arrays, ``<list>`` elements, comma lines (fmt=1) or ``name = value`` lines (fmt=0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from xml.sax.saxutils import escape

import orjson

from .http_api_centre import ApiError, RecentEvents

# Parameters that do not make two requests different: the credential and the answer's form.
_NOT_COUNTED = frozenset({"login", "psw", "apikey", "fmt", "charset"})


@dataclass(frozen=True, slots=True)
class ScriptReply:
    """A successful answer: text in the request's charset, or a file's bytes as they are."""

    body: str | bytes
    # None: the content type of the request's fmt.
    content_type: str | None = None


class ScriptHandler(Protocol):
    """One ``/sys/<name>.php`` script of the simulated provider."""

    @property
    def name(self) -> str: ...

    def answer(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        """The answer to an authenticated request of ``login``."""


class IdenticalRequests:
    """The provider's "no more than ``limit`` identical requests within a minute": a request
    is counted when it arrives, refused ones too (the ``window_seconds`` is the minute)."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._recent = RecentEvents(window_seconds)

    def refused(self, login: str, params: Mapping[str, str]) -> bool:
        """Count this request; True when it is one too many (error 9)."""
        return self._recent.add(fingerprint(login, params), self._clock()) > self._limit


def fingerprint(login: str, params: Mapping[str, str]) -> bytes:
    """What makes two requests identical: the login and every other parameter."""
    items = sorted((k, v) for k, v in params.items() if k not in _NOT_COUNTED)
    text = "\x1f".join(f"{k}={v}" for k, v in [("login", login), *items])
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def render_ok(fmt: int) -> ScriptReply:
    """A change that went through: ``OK`` (fmt 0, 1), ``<result>OK</result>``,
    ``{"result": "OK"}`` (seed 000, receive_phones.php chg)."""
    if fmt == 3:
        return ScriptReply(_json({"result": "OK"}))
    return ScriptReply("<result>OK</result>" if fmt == 2 else "OK")


def render_id(fmt: int, record_id: int) -> ScriptReply:
    """A record created: ``ID = N`` (fmt 0, contact_answer), ``N`` (fmt 1), ``{"id": N}``."""
    if fmt == 3:
        return ScriptReply(_json({"id": record_id}))
    if fmt == 2:
        return ScriptReply(f"<result><id>{record_id}</id></result>")
    return ScriptReply(str(record_id) if fmt == 1 else f"ID = {record_id}")


def render_fields(fmt: int, fields: Mapping[str, Any], element: str) -> ScriptReply:
    """One record: a JSON object, ``<element>`` with a child per field, the values comma
    separated (fmt 1) or ``name = value`` pairs (fmt 0)."""
    if fmt == 3:
        return ScriptReply(_json(fields))
    if fmt == 2:
        return ScriptReply(f"<{element}>{_xml(fields)}</{element}>")
    return ScriptReply(_line(fmt, fields))


def render_items(fmt: int, items: Sequence[Mapping[str, Any]], element: str) -> ScriptReply:
    """A list: a JSON array, ``<list>`` of ``<element>``s, or one line per record."""
    if fmt == 3:
        return ScriptReply(_json(list(items)))
    if fmt == 2:
        inner = "".join(f"<{element}>{_xml(item)}</{element}>" for item in items)
        return ScriptReply(f"<list>{inner}</list>")
    return ScriptReply("\n".join(_line(fmt, item) for item in items))


def _line(fmt: int, fields: Mapping[str, Any]) -> str:
    if fmt == 1:
        return ",".join(str(v) for v in fields.values())
    return ", ".join(f"{k} = {v}" for k, v in fields.items())


def _xml(fields: Mapping[str, Any]) -> str:
    return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())


def _json(document: object) -> str:
    return orjson.dumps(document).decode()
