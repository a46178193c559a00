"""Calls of the account scripts within their limits, and reading their answers' fields.

The provider refuses (error 9) more than two identical receive_phones.php requests a minute
(seed 000), more than three identical downloads.php requests (seed 000) and more than three
identical phones.php requests (the provider's contact_answer page). :class:`ScriptCaller`
waits instead: each script has a :class:`~gateway.http_api.limits.WindowLimiter` keyed by the
request's parameters, on the client's window (the provider's minute, with the client's
margin). Concurrency is the client's: every request of the login shares its slots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway.http_api.errors import HttpTransportError
from gateway.http_api.limits import WindowLimiter

if TYPE_CHECKING:
    from gateway.http_api.client import DownloadSink

# Identical requests the provider lets through a minute, per script.
IDENTICAL_PER_MINUTE: Mapping[str, int] = MappingProxyType(
    {"receive_phones": 2, "downloads": 3, "phones": 3}
)
# As the client's own windows: a use is stamped when it leaves, counted when it arrives.
WINDOW_MARGIN = 1.05
WINDOW_SLACK_SECONDS = 0.25


class ScriptClient(Protocol):
    """What the account scripts need of :class:`~gateway.http_api.client.SmscHttpClient`."""

    async def call(self, script: str, params: Mapping[str, str], *, resend: bool = True) -> Any:
        """The JSON answer of one call."""

    async def download(self, script: str, params: Mapping[str, str], sink: DownloadSink) -> int:
        """A file answer streamed into ``sink``; its length."""


class ScriptCaller:
    """Calls a script once its identical-request limit allows; see the module docstring."""

    def __init__(
        self,
        client: ScriptClient,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        window = window_seconds * WINDOW_MARGIN + WINDOW_SLACK_SECONDS
        self._limiters = {
            script: WindowLimiter(limit, window, clock)
            for script, limit in IDENTICAL_PER_MINUTE.items()
        }

    async def call(self, script: str, params: Mapping[str, str], *, resend: bool) -> Any:
        """The answer of ``script``; ``resend``: safe to repeat after a lost answer."""
        await self._limiters[script].acquire(_identity(params))
        return await self._client.call(script, params, resend=resend)

    async def download(self, script: str, params: Mapping[str, str], sink: DownloadSink) -> int:
        await self._limiters[script].acquire(_identity(params))
        return await self._client.download(script, params, sink)


def _identity(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(params.items()))


# -- reading answers -----------------------------------------------------------------------


def unexpected(script: str, document: Any) -> HttpTransportError:
    """An answer of a shape the script does not give (the provider may have acted)."""
    shown = orjson.dumps(document, default=str)[:80].decode("utf-8", "replace")
    return HttpTransportError(f"{script}.php answer not understood: {shown}", maybe_processed=True)


def records(script: str, document: Any) -> list[Mapping[str, Any]]:
    """A list answer: every item an object."""
    if not isinstance(document, list) or not all(isinstance(i, dict) for i in document):
        raise unexpected(script, document)
    return document


def record_id(script: str, document: Any) -> int:
    """``{"id": N}``: what creating a record answers."""
    value = as_int(document.get("id")) if isinstance(document, dict) else None
    if value is None:
        raise unexpected(script, document)
    return value


def expect_ok(script: str, document: Any) -> None:
    """``{"result": "OK"}``: what a change answers."""
    if not isinstance(document, dict) or str(document.get("result", "")).upper() != "OK":
        raise unexpected(script, document)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def as_text(value: Any) -> str:
    return "" if value is None else str(value)
