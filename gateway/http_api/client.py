"""The provider's HTTP API over httpx: send.php, status.php (one id or many), balance.php,
get.php?get_answers=1 and wait_call.php, and any other script through
:meth:`SmscHttpClient.call` (a JSON answer) or :meth:`SmscHttpClient.download` (a file
streamed to a sink).

One :class:`SmscHttpClient` per credential. Every request carries ``fmt=3`` and
``charset=utf-8`` and goes as a POST form (as GET only when configured and short, see
``get_max_url_chars``), with explicit timeouts and a bounded connection pool.

- **Limits on our side** (:mod:`.limits`): send, status, balance and the account's other
  scripts each have their own concurrency (urgent callers first), and every attempt of any
  of them also takes one of 14 slots of the login, so fewer than the provider's 15 are ever
  in flight at once; within its slot a status query of one message, a balance query, a
  get_answers request identical to earlier ones or a wait_call for one phone waits its turn
  in the window (5% and 0.25 s longer than the provider's, for the time between our stamp
  and its count), and a multi-id query the window of the previous one.
- **Transport failures** are tried again (tenacity: the next host at once, then exponential
  backoff with jitter) up to ``transport_attempts``, rotating through ``base_urls``. A send is
  tried again only when it surely never reached the provider (the connection was not made);
  otherwise :class:`~.errors.HttpTransportError` with ``maybe_processed`` goes to the caller,
  which must find out from status.php before sending again (:mod:`.sending`).
- **API errors** (HTTP 200 with ``error_code``) raise their typed error (:mod:`.errors`) and
  feed the credential's circuit (:mod:`.circuit`); while it is open nothing is sent and
  :class:`~.errors.CircuitOpenError` is raised at once.

Credentials are never logged and never part of ``repr``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential_jitter

from gateway.settings.http_api import PROVIDER_MAX_CONCURRENT, HttpApiSettings

from .answers import CallNumber, IncomingAnswer, parse_answers, parse_call_number
from .circuit import CredentialCircuit
from .errors import (
    SCRIPT_ERROR_CLASSES,
    CircuitOpenError,
    HttpTransportError,
    NothingFoundError,
    ProviderApiError,
)
from .limits import PrioritySemaphore, WindowLimiter
from .metrics import HttpApiMetrics
from .replies import (
    Balance,
    MessageStatus,
    SendReply,
    parse_balance,
    parse_send,
    parse_status,
    parse_statuses,
    read_answer,
)

log = logging.getLogger(__name__)

WINDOW_MARGIN = 1.05
WINDOW_SLACK_SECONDS = 0.25
# Errors that need someone to act: logged at ERROR.
_ALERTS = frozenset({2, 3, 4})


class DownloadSink(Protocol):
    """Where :meth:`SmscHttpClient.download` puts a file as it arrives."""

    def begin(self, total_bytes: int | None) -> None:
        """The answer is a file of ``total_bytes`` (None: the length was not announced)."""

    def write(self, chunk: bytes) -> None:
        """The next bytes of the file."""


def credential_name(settings: HttpApiSettings) -> str:
    """The credential as shown in logs and metric labels: the login, never a secret."""
    return "apikey" if settings.apikey else settings.login


class SmscHttpClient:
    """See the module docstring. ``transport`` replaces the network (tests)."""

    def __init__(
        self,
        settings: HttpApiSettings,
        metrics: HttpApiMetrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.credential = credential_name(settings)
        self.circuit = CredentialCircuit(settings)
        self._http = _http_client(settings, transport)
        self._auth = _auth(settings)
        self._host = 0
        # Uses are stamped before the request leaves and counted by the provider when it
        # arrives: the margin keeps a window's first uses out of the next one's count.
        window = settings.limit_window_seconds * WINDOW_MARGIN + WINDOW_SLACK_SECONDS
        self._send_slots = PrioritySemaphore(settings.send_concurrency)
        self._status_slots = PrioritySemaphore(settings.status_concurrency)
        self._balance_slots = PrioritySemaphore(1)
        self._account_slots = PrioritySemaphore(settings.account_concurrency)
        # Every attempt of every script: error 9 comes at 15 concurrent requests per login.
        self._login_slots = PrioritySemaphore(PROVIDER_MAX_CONCURRENT - 1)
        self._per_message = WindowLimiter(settings.status_per_message_per_window, window, clock)
        self._multi = WindowLimiter(1, window, clock)
        self._balances = WindowLimiter(settings.balance_per_window, window, clock)
        self._answers = WindowLimiter(settings.answers_identical_per_window, window, clock)
        self._wait_calls = WindowLimiter(settings.wait_call_per_phone_per_window, window, clock)
        self._backoff = wait_exponential_jitter(
            multiplier=settings.retry_initial_seconds,
            max=settings.retry_max_seconds,
            jitter=settings.retry_initial_seconds,
        )
        metrics.watch_circuit(self.credential, lambda: float(self.circuit.state(self._clock())))

    def __repr__(self) -> str:
        return f"SmscHttpClient(credential={self.credential!r}, hosts={self._settings.base_urls})"

    async def __aenter__(self) -> SmscHttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, params: Mapping[str, str], *, urgent: bool = False) -> SendReply:
        """One send.php call with ``params`` (``cost=3`` is added, for cost and balance)."""
        async with self._send_slots.hold(urgent=urgent):
            document = await self._call(
                "send", {**params, "cost": "3"}, resend=False, urgent=urgent
            )
        reply = parse_send(document)
        self.circuit.on_send_accepted()
        if reply.balance is not None:
            self._metrics.balance(self.credential).set(float(reply.balance))
        return reply

    async def status(self, message_id: str, phone: str, *, urgent: bool = False) -> MessageStatus:
        """The status of one message (``all=1``: cost, parts, send date too)."""
        params = {"id": message_id, "phone": phone, "all": "1"}
        async with self._status_slots.hold(urgent=urgent):
            await self._per_message.acquire((message_id, phone))
            document = await self._call("status", params, resend=True, urgent=urgent)
        return parse_status(document, message_id, phone)

    async def statuses(self, messages: Sequence[tuple[str, str]]) -> list[MessageStatus]:
        """The statuses of several (message id, phone) pairs in one multi-id query; the
        provider allows one such query a window (a single pair is queried alone)."""
        if len(messages) == 1:
            return [await self.status(*messages[0])]
        params = {
            "id": ",".join(message_id for message_id, _ in messages),
            "phone": ",".join(phone for _, phone in messages),
            "all": "1",
        }
        async with self._status_slots.hold():
            await self._multi.acquire()
            document = await self._call("status", params, resend=True)
        return parse_statuses(document)

    async def balance(self) -> Balance:
        """The account balance (with its currency); also sets the balance gauge."""
        async with self._balance_slots.hold():
            await self._balances.acquire()
            document = await self._call("balance", {"cur": "1"}, resend=True)
        balance = parse_balance(document)
        self._metrics.balance(self.credential).set(float(balance.balance))
        return balance

    async def get_answers(
        self,
        *,
        after_id: int | None = None,
        cnt: int | None = None,
        hour: int | None = None,
        to_phone: str | None = None,
    ) -> list[IncomingAnswer]:
        """Incoming SMS after ``after_id`` (get.php?get_answers=1), in the provider's order.

        A request identical to earlier ones waits its turn in the window (the provider: error
        9 above three a minute); get.php's error 3 ("not found") is an empty list.
        """
        params = {"get_answers": "1"}
        optional = {"after_id": after_id, "cnt": cnt, "hour": hour, "to_phone": to_phone}
        params |= {name: str(value) for name, value in optional.items() if value is not None}
        async with self._account_slots.hold():
            await self._answers.acquire(tuple(sorted(params.items())))
            try:
                document = await self._call("get", params, resend=True)
            except NothingFoundError:
                return []
        return parse_answers(document)

    async def wait_call(self, phone: str) -> CallNumber:
        """The number ``phone`` must call to confirm itself (wait_call.php); requests for one
        phone wait their turn in the window (the provider: error 9 above fifty a minute)."""
        async with self._account_slots.hold():
            await self._wait_calls.acquire(phone)
            document = await self._call("wait_call", {"phone": phone}, resend=True)
        return parse_call_number(document)

    async def call(self, script: str, params: Mapping[str, str], *, resend: bool = True) -> Any:
        """One call of another script (receive_phones, downloads, phones...) with ``params``;
        its JSON answer. It takes one of the account scripts' slots; transport failures are
        tried again only with ``resend`` (a call that is safe to repeat); the caller keeps the
        script's own limits (identical requests a minute)."""
        async with self._account_slots.hold():
            return await self._call(script, params, resend=resend)

    async def download(self, script: str, params: Mapping[str, str], sink: DownloadSink) -> int:
        """One call whose answer is a file, streamed into ``sink``; returns its length. A JSON
        answer is the provider's error (raised as its typed error). Tried once: a file half
        written is the caller's to discard."""
        blocked = self.circuit.blocked(self._clock())
        if blocked is not None:
            self._metrics.requests(script, "circuit_open").inc()
            raise CircuitOpenError(*blocked)
        host = self._settings.base_urls[self._host % len(self._settings.base_urls)]
        started = time.perf_counter()
        try:
            async with self._account_slots.hold(), self._login_slots.hold():
                size = await self._stream(self._request(host, script, params), script, sink)
        except ProviderApiError as exc:
            self._api_error(script, exc)
            raise
        except HttpTransportError:
            self._metrics.requests(script, "transport_error").inc()
            raise
        finally:
            self._metrics.latency(script).observe(time.perf_counter() - started)
        self._metrics.requests(script, "ok").inc()
        return size

    async def _stream(self, request: httpx.Request, script: str, sink: DownloadSink) -> int:
        response = await self._send(request, stream=True)
        try:
            if "json" in response.headers.get("content-type", ""):
                body = await response.aread()
                document = read_answer(body, script, lambda code: self._on_error(script, code))
                raise HttpTransportError(
                    f"{script}.php answered JSON instead of a file: {str(document)[:60]!r}",
                    maybe_processed=True,
                )
            length = response.headers.get("content-length")
            sink.begin(int(length) if length and length.isdigit() else None)
            size = 0
            async for chunk in response.aiter_bytes():
                sink.write(chunk)
                size += len(chunk)
            return size
        except httpx.HTTPError as exc:
            raise HttpTransportError(_failure(exc), maybe_processed=True) from exc
        finally:
            await response.aclose()

    async def _call(
        self, script: str, params: Mapping[str, str], *, resend: bool, urgent: bool = False
    ) -> Any:
        """One API call; see the module docstring for what is tried again."""

        def may_repeat(error: BaseException | None) -> bool:
            # A request the provider may have acted on is repeated only when that is safe.
            return isinstance(error, HttpTransportError) and (resend or not error.maybe_processed)

        try:
            return await self._attempt(script, params, urgent=urgent)
        except HttpTransportError as exc:
            if not may_repeat(exc) or self._settings.transport_attempts < 2:
                raise
            self._metrics.retries(script, "transport").inc()

        def retry(state: RetryCallState) -> bool:
            return may_repeat(state.outcome.exception() if state.outcome else None)

        retrying = AsyncRetrying(
            retry=retry,
            wait=self._backoff,
            stop=stop_after_attempt(self._settings.transport_attempts - 1),
            before_sleep=lambda _: self._metrics.retries(script, "transport").inc(),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                document = await self._attempt(script, params, urgent=urgent)
        return document

    async def _attempt(self, script: str, params: Mapping[str, str], *, urgent: bool) -> Any:
        blocked = self.circuit.blocked(self._clock())
        if blocked is not None:
            self._metrics.requests(script, "circuit_open").inc()
            raise CircuitOpenError(*blocked)
        host = self._settings.base_urls[self._host % len(self._settings.base_urls)]
        started = time.perf_counter()
        try:
            async with self._login_slots.hold(urgent=urgent):
                body = await self._exchange(host, script, params)
            document = read_answer(body, script, lambda code: self._on_error(script, code))
        except ProviderApiError as exc:
            self._api_error(script, exc)
            raise
        except HttpTransportError as exc:
            self._metrics.requests(script, "transport_error").inc()
            log.warning("%s.php on %s failed: %s", script, host, exc)
            self._rotate(host)
            raise
        finally:
            self._metrics.latency(script).observe(time.perf_counter() - started)
        self._metrics.requests(script, "ok").inc()
        return document

    async def _exchange(self, host: str, script: str, params: Mapping[str, str]) -> bytes:
        response = await self._send(self._request(host, script, params), stream=False)
        return response.content

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            response = await self._http.send(request, stream=stream)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: it cannot have been processed.
            raise HttpTransportError(_failure(exc), maybe_processed=False) from exc
        except httpx.HTTPError as exc:
            raise HttpTransportError(_failure(exc), maybe_processed=True) from exc
        if response.status_code != httpx.codes.OK:
            if stream:
                await response.aclose()
            # The API answers 200 even for its errors; 5xx may come after processing.
            processed = response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR
            raise HttpTransportError(f"HTTP {response.status_code}", maybe_processed=processed)
        return response

    def _request(self, host: str, script: str, params: Mapping[str, str]) -> httpx.Request:
        data = {**self._auth, "fmt": "3", "charset": "utf-8", **params}
        url = f"{host}/sys/{script}.php"
        limit = self._settings.get_max_url_chars
        if limit and len(url) + 1 + len(urlencode(data)) <= limit:
            return self._http.build_request("GET", url, params=data)
        return self._http.build_request("POST", url, data=data)

    def _on_error(self, script: str, code: int) -> float | None:
        if code in SCRIPT_ERROR_CLASSES.get(script, {}):
            return None  # the script's own meaning (get.php 3 is "not found", not money)
        return self.circuit.on_error(code, self._clock())

    def _api_error(self, script: str, exc: ProviderApiError) -> None:
        self._metrics.requests(script, "api_error").inc()
        self._metrics.api_errors(script, str(exc.code)).inc()
        # A script's own meaning of a code is no alert ("not found", one rent too dear).
        alert = exc.code in _ALERTS and exc.code not in SCRIPT_ERROR_CLASSES.get(script, {})
        level = logging.ERROR if alert else logging.WARNING
        log.log(level, "%s (credential %s)", exc, self.credential)

    def _rotate(self, failed_host: str) -> None:
        # Concurrent failures on one host move on by one host, not one each.
        hosts = self._settings.base_urls
        if hosts[self._host % len(hosts)] == failed_host:
            self._host = (self._host + 1) % len(hosts)


def _failure(exc: httpx.HTTPError) -> str:
    # The type and text only: the request (and its address) is left out of messages.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _auth(settings: HttpApiSettings) -> dict[str, str]:
    if settings.apikey:
        return {"apikey": settings.apikey}
    return {"login": settings.login, "psw": settings.password}


def _http_client(
    settings: HttpApiSettings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        write=settings.write_timeout_seconds,
        pool=settings.pool_timeout_seconds,
    )
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=settings.keepalive_expiry_seconds,
    )
    verify: ssl.SSLContext | bool = settings.tls_verify
    if settings.tls_ca_file:
        verify = ssl.create_default_context(cafile=settings.tls_ca_file)
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        verify=verify,
        transport=transport,
        headers={"User-Agent": "smsc-gateway"},
    )
