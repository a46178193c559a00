"""The gateway's SMPP bind: connect, bind, keep it up, submit, drain, unbind.

A bind is a transceiver (the sender: submits, and reports coming back on the same link) or a
receiver (the receiver role: DELIVER_SM only), chosen by :class:`BindMode`.

Connection failures are retried with exponential backoff and full jitter
(:mod:`gateway.backoff`, from ``reconnect_min_seconds`` to ``reconnect_max_seconds``), rotating
through the configured hosts (the provider's primary, then its backup). Submits wait a bounded time
for a bind; a non-zero command_status becomes the error class of
:func:`gateway.smpp.errors.error_for_status`, which says whether sending again can help.
Binds lost right after they were made are counted and, when they keep coming, reported at
ERROR (:mod:`gateway.smpp_io.bind_churn`): another connection is using the login.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
from collections.abc import Callable
from enum import Enum

from gateway.backoff import Backoff, Jitter
from gateway.metrics import Children, Metrics
from gateway.settings import SmppSettings
from gateway.smpp.constants import status_name
from gateway.smpp.errors import (
    BindRejectedError,
    ConnectionClosedError,
    SmppError,
    error_for_status,
)
from gateway.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from gateway.smpp.session import Role, Session, SessionSettings

from .bind_churn import BindChurn, BindEnd
from .smpp_connection import SmppConnection

log = logging.getLogger(__name__)

DeliverHandler = Callable[[SmppConnection, DeliverSm], None]


class BindMode(Enum):
    """How a bind introduces itself (SMPP 3.4 4.1): what the provider may send on it."""

    TRANSCEIVER = "transceiver"
    RECEIVER = "receiver"


_BIND_PDUS: dict[BindMode, type[BindTransceiver] | type[BindReceiver]] = {
    BindMode.TRANSCEIVER: BindTransceiver,
    BindMode.RECEIVER: BindReceiver,
}


class PendingSubmit:
    """A submit sent at once (:meth:`SmppClient.ready`): its response's :attr:`future`, then
    :meth:`answer`, what :meth:`SmppClient.submit` would have returned or raised."""

    __slots__ = ("_client", "_started", "cancelled", "future")

    def __init__(self, client: SmppClient, connection: SmppConnection, pdu: SubmitSm) -> None:
        self._client = client
        self._started = time.perf_counter()
        self.future = connection.send_now(pdu)
        self.cancelled = False

    def ok(self) -> bool:
        """Whether the answer is in and is ESME_ROK (:meth:`answer` returns a response)."""
        future = self.future
        if self.cancelled or not future.done() or future.cancelled():
            return False
        if future.exception() is not None:
            return False
        response = future.result()
        return response.command_status == 0 and isinstance(response, SubmitSmResp)

    def answer(self) -> SubmitSmResp:
        """Once :attr:`future` is done: the provider's answer, or the error ``submit`` would
        raise (CancelledError once :meth:`cancel` was called)."""
        if self.cancelled:
            raise asyncio.CancelledError
        return self._client._answered(self.future.result(), self._started)

    def cancel(self) -> None:
        """The answer is no longer wanted (as when an awaited submit is cancelled)."""
        self.cancelled = True
        self.future.cancel()


class SmppClient:
    """One bind to the provider that reconnects until stopped."""

    def __init__(
        self,
        settings: SmppSettings,
        metrics: Metrics,
        on_deliver: DeliverHandler,
        *,
        name: str = "smpp-0",
        mode: BindMode = BindMode.TRANSCEIVER,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.mode = mode
        self._metrics = metrics
        self._on_deliver = on_deliver
        self._rng = rng or random.Random()
        self._backoff = Backoff(
            settings.reconnect_min_seconds, settings.reconnect_max_seconds, jitter=Jitter.FULL
        )
        self._connection: SmppConnection | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._bound = asyncio.Event()
        self._stopping = False
        self.reconnects = 0
        # Read when scraped: a submit does not pay for it.
        metrics.smpp_window_in_use.labels(name).set_function(self._window_in_use)
        self._latency = metrics.smpp_submit_latency.labels(name)
        self._submits = Children(metrics.smpp_submits)
        self._churn = BindChurn()
        metrics.smpp_window_size.labels(name).set(settings.window)
        metrics.smpp_bound.labels(name).set(0)

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    async def wait_bound(self, timeout_seconds: float) -> None:
        await asyncio.wait_for(self._bound.wait(), timeout_seconds)

    async def run(self) -> None:
        """Keep a bind up until :meth:`stop`; never returns earlier, never raises on I/O."""
        attempt = 0
        while not self._stopping:
            host = self.settings.hosts[attempt % len(self.settings.hosts)]
            try:
                connection = await self._connect_and_bind(host)
            except (OSError, TimeoutError, SmppError) as exc:
                delay = self._backoff.delay(attempt, self._rng)
                log.warning(
                    "%s: bind to %s failed (%s); retry in %.1fs", self.name, host, exc, delay
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            attempt = 0
            await self._serve(connection)

    @property
    def window_free(self) -> int:
        """Room in this bind's window; 0 when not bound."""
        connection = self._connection
        if connection is None or connection.closed or not self.bound:
            return 0
        return connection.session.window_free

    async def submit(self, pdu: SubmitSm, *, urgent: bool = False) -> SubmitSmResp:
        """Submit and return the provider's answer; raises a typed SMPP error otherwise."""
        if self.mode is BindMode.RECEIVER:
            raise ConnectionClosedError(f"{self.name} is a receiver bind; it cannot submit")
        connection = self._connection
        if connection is None or connection.closed or not self._bound.is_set():
            connection = await self._connection_for_submit()
        started = time.perf_counter()
        response = await connection.request(pdu, urgent=urgent)
        return self._answered(response, started)

    def ready(self, *, urgent: bool = False) -> Callable[[SubmitSm], PendingSubmit] | None:
        """A submit that sends at once, waiting for nothing (bound, room in the window,
        nothing unsent), or None when :meth:`submit` would wait."""
        connection = self._connection
        if (
            connection is None
            or self.mode is BindMode.RECEIVER
            or not self._bound.is_set()
            or not connection.ready(urgent=urgent)
        ):
            return None
        return functools.partial(PendingSubmit, self, connection)

    def _answered(self, response: Pdu, started: float) -> SubmitSmResp:
        """What :meth:`submit` makes of the provider's response."""
        self._latency.observe(time.perf_counter() - started)
        self._submits(self.name, status_name(response.command_status)).inc()
        if response.command_status != 0:
            raise error_for_status(response.command_status)
        if not isinstance(response, SubmitSmResp):
            raise ConnectionClosedError(f"unexpected {type(response).__name__}")
        return response

    def _window_in_use(self) -> float:
        """Requests awaiting a response on the bind (0 while it is not bound)."""
        connection = self._connection
        if connection is None or not self._bound.is_set():
            return 0.0
        return float(connection.session.outstanding)

    async def stop(self) -> None:
        """Stop reconnecting, let outstanding submits finish, then unbind."""
        self._stopping = True
        connection = self._connection
        if connection is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.wait_idle(), self.settings.unbind_timeout_seconds)
        await connection.unbind(self.settings.unbind_timeout_seconds)

    # -- internals ---------------------------------------------------------------------

    async def _connection_for_submit(self) -> SmppConnection:
        if not self._bound.is_set():
            try:
                await asyncio.wait_for(self._bound.wait(), self.settings.response_timeout_seconds)
            except TimeoutError:
                raise ConnectionClosedError(f"{self.name} is not bound") from None
        connection = self._connection
        if connection is None or connection.closed:
            raise ConnectionClosedError(f"{self.name} is not bound")
        return connection

    async def _connect_and_bind(self, hostport: str) -> SmppConnection:
        host, _, port = hostport.rpartition(":")
        context = (
            ssl.create_default_context(cafile=self.settings.tls_ca_file)
            if self.settings.tls
            else None
        )
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), ssl=context),
            self.settings.connect_timeout_seconds,
        )
        session = Session(Role.ESME, self._session_config(), asyncio.get_running_loop().time())
        connection = SmppConnection(session, reader, writer, self._dispatch_request, name=self.name)
        self._connection = connection
        self._reader_task = asyncio.create_task(connection.run(), name=f"{self.name}-reader")
        try:
            await self._bind(connection)
        except BaseException:
            connection.abort("bind failed")
            await asyncio.gather(self._reader_task, return_exceptions=True)
            raise
        return connection

    def _session_config(self) -> SessionSettings:
        return SessionSettings(
            window=self.settings.window,
            response_timeout_seconds=self.settings.response_timeout_seconds,
            enquire_link_interval_seconds=self.settings.enquire_link_interval_seconds,
            max_frame_size=self.settings.max_frame_size,
        )

    async def _bind(self, connection: SmppConnection) -> None:
        bind = _BIND_PDUS[self.mode](
            system_id=self.settings.system_id,
            password=self.settings.password,
            system_type=self.settings.system_type,
        )
        try:
            response = await connection.send_request(bind)
        except SmppError:
            self._metrics.smpp_binds.labels(self.name, "error").inc()
            raise
        if response.command_status != 0:
            self._metrics.smpp_binds.labels(self.name, status_name(response.command_status)).inc()
            raise BindRejectedError(response.command_status)
        self._metrics.smpp_binds.labels(self.name, "ok").inc()

    async def _serve(self, connection: SmppConnection) -> None:
        log.info("%s: bound as %s (%s)", self.name, self.settings.system_id, self.mode.value)
        bound_at = asyncio.get_running_loop().time()
        self._bound.set()
        self._metrics.smpp_bound.labels(self.name).set(1)
        try:
            if self._reader_task is not None:
                await self._reader_task
        finally:
            self._bound.clear()
            self._metrics.smpp_bound.labels(self.name).set(0)
        if not self._stopping:
            self.reconnects += 1
            self._metrics.smpp_reconnects.labels(self.name).inc()
            log.warning("%s: connection lost: %s", self.name, connection.close_reason)
            self._bind_lost(self._churn.lost(bound_at, asyncio.get_running_loop().time()))

    def _bind_lost(self, end: BindEnd) -> None:
        if not end.short:
            return
        self._metrics.smpp_binds_cut_short.labels(self.name).inc()
        if end.report:
            log.error(
                "%s: %d binds in a row lost within %.0f s of binding: the provider is closing "
                "them, most likely for another connection on login %s (one per login unless "
                "system_type MCONn; replicas x GATEWAY_SMPP_BINDS must stay within n)",
                self.name,
                end.streak,
                self._churn.short_seconds,
                self.settings.system_id,
            )

    def _dispatch_request(self, pdu: Pdu) -> None:
        # The session refuses every other request an ESME may not receive (SMPP 3.4 2.3).
        connection = self._connection
        if connection is not None and isinstance(pdu, DeliverSm):
            self._on_deliver(connection, pdu)
