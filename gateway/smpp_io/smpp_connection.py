"""Drives an SMPP :class:`~gateway.smpp.session.Session` over an asyncio stream.

The one place where SMPP meets sockets and the clock: it reads bytes into the session, writes
what the session queues, fires the session's timers at its deadlines, and gives every request
an awaitable response. Both sides use it: the gateway's client binds and the simulator's
server connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from gateway.smpp.errors import (
    ConnectionClosedError,
    ResponseTimeoutError,
    SessionStateError,
)
from gateway.smpp.pdu import Pdu
from gateway.smpp.session import (
    Event,
    ProtocolViolation,
    RequestAbandoned,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Session,
    SessionClosed,
    State,
)

log = logging.getLogger(__name__)

RequestHandler = Callable[[Pdu], None]
READ_SIZE = 64 * 1024


class SmppConnection:
    """One SMPP connection: a session, its stream, its timers and its waiting requests.

    ``on_request`` is called, synchronously and in arrival order, for every request the peer
    sends that the application must answer (deliver_sm on the client, bind and submit_sm on
    the simulator); it answers later through :meth:`respond`.
    """

    def __init__(
        self,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: RequestHandler,
        *,
        name: str = "smpp",
    ) -> None:
        self.session = session
        self.name = name
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._window_waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = asyncio.Event()
        self._idle = asyncio.Event()
        self._flush_scheduled = False
        self.close_reason = ""

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def now(self) -> float:
        return self._loop.time()

    async def run(self) -> None:
        """Read until the session or the stream ends, then fail whatever still waits."""
        self._arm_timer()
        try:
            while not self.closed:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    self._dispatch(self.session.close("peer closed the connection"))
                    break
                self._dispatch(self.session.receive_data(data, self.now()))
        except (ConnectionError, OSError) as exc:
            self._dispatch(self.session.close(f"connection error: {exc}"))
        finally:
            self._shutdown("connection ended")

    async def request(self, pdu: Pdu, *, urgent: bool = False) -> Pdu:
        """Send a request and return its response (which may carry an error status).

        Waits for room in the window, in arrival order except that urgent requests go ahead
        of every other waiter. Raises :class:`ResponseTimeoutError` when the response does
        not come in time and :class:`ConnectionClosedError` when the connection ends first.
        """
        while self.session.window_free <= 0 or (self._window_waiters and not urgent):
            if self.closed:
                raise ConnectionClosedError(self.close_reason)
            waiter: asyncio.Future[None] = self._loop.create_future()
            if urgent:
                self._window_waiters.appendleft(waiter)
            else:
                self._window_waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._window_waiters.remove(waiter)
            if self.session.window_free > 0:
                break
        # What send_request does, without a coroutine of its own.
        future = self._send(pdu)
        if self._writer.transport.get_write_buffer_size():
            await self._drain()
        return await future

    def ready(self, *, urgent: bool = False) -> bool:
        """Whether :meth:`request` would send at once, waiting for nothing: the window has
        room nobody waits for and the transport holds no unsent bytes."""
        return not (
            self.closed
            or self.session.state is State.UNBINDING
            or self.session.window_free <= 0
            or (self._window_waiters and not urgent)
            or self._writer.transport.get_write_buffer_size()
        )

    def send_now(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Send a request that :meth:`ready` said may go; the future of its response (done
        as the one :meth:`request` awaits)."""
        return self._send(pdu)

    async def send_request(self, pdu: Pdu) -> Pdu:
        """Send now (the window must have room) and await the response."""
        future = self._send(pdu)
        # Backpressure: wait while the transport holds unsent bytes (an empty buffer is
        # never paused), rather than enter drain() for every request.
        if self._writer.transport.get_write_buffer_size():
            await self._drain()
        return await future

    def _send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Queue ``pdu`` (the window must have room); the future of its response."""
        if self.closed:
            raise ConnectionClosedError(self.close_reason)
        if self.session.state is State.UNBINDING:
            raise ConnectionClosedError("the session is unbinding")
        session = self.session
        sent = session.send(pdu, self._loop.time())
        future: asyncio.Future[Pdu] = self._loop.create_future()
        self._pending[sent.sequence_number] = future
        self._flush_soon()
        # The request's response deadline may be the session's earliest timer now; not when
        # the timer is set and other requests are outstanding: it is then due no later than
        # theirs, which come before this one's (every request gets the same timeout).
        if self._timer is None or session.outstanding <= 1:
            self._arm_timer()
        return future

    def respond(self, request: Pdu, response: Pdu) -> None:
        """Answer a request the peer sent; a no-op if the connection is gone."""
        if self.closed:
            return
        try:
            self.session.respond(request, response, self.now())
        except SessionStateError:
            return  # the session closed and forgot the request meanwhile
        self._flush_soon()

    async def unbind(self, timeout_seconds: float = 5.0) -> None:
        """Unbind cleanly when bound, then close; never raises for a dead peer."""
        if not self.closed:
            # A session not bound yet ends at once, and this dispatch closes the connection.
            self._dispatch(self.session.unbind(self.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout_seconds)
        self.abort("unbound")

    def abort(self, reason: str) -> None:
        """Close the transport now; whatever waits fails with ConnectionClosedError."""
        if not self.closed:
            self._dispatch(self.session.close(reason))
        self._shutdown(reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def wait_idle(self) -> None:
        """Return once no request of this side awaits a response (or the link is gone)."""
        while self.session.outstanding and not self.closed:
            self._idle.clear()
            await self._idle.wait()

    # -- internals ---------------------------------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                self._on_request(event.pdu)
            elif isinstance(event, ResponseReceived):
                self._resolve(event.request, event.response, None)
            elif isinstance(event, ResponseTimedOut):
                name = type(event.request).__name__
                self._resolve(event.request, None, ResponseTimeoutError(f"no response to {name}"))
            elif isinstance(event, RequestAbandoned):
                self._resolve(event.request, None, ConnectionClosedError(event.reason))
            elif isinstance(event, ProtocolViolation):
                log.warning("%s: protocol violation: %s", self.name, event.message)
            elif isinstance(event, SessionClosed):
                self.close_reason = event.reason
        self._flush()
        self._wake_window()
        if not self.session.outstanding:
            self._idle.set()
        if self.session.state is State.CLOSED:
            self._shutdown(self.close_reason or "session closed")
        else:
            self._arm_timer()

    def _resolve(self, request: Pdu, response: Pdu | None, error: Exception | None) -> None:
        future = self._pending.pop(request.sequence_number, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert response is not None
            future.set_result(response)

    def _wake_window(self) -> None:
        free = self.session.window_free
        for waiter in self._window_waiters:
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
        if self.session.state is State.CLOSED:
            for waiter in self._window_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _flush_soon(self) -> None:
        """Write at the next turn of the loop, so a burst of PDUs leaves in one send call."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.abort(f"write failed: {exc}")

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if not self.closed:
            self._dispatch(self.session.handle_timer(self.now()))

    def _shutdown(self, reason: str) -> None:
        if self.closed:
            return
        self.close_reason = self.close_reason or reason
        self._closed.set()
        if self._timer is not None:
            self._timer.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosedError(self.close_reason))
        self._pending.clear()
        self._idle.set()
        self._wake_window()
        self._flush()
        self._writer.close()
