"""The ingress's HTTP/1.1 server: listening, a once-a-second look at every connection, and
a shutdown that lets the requests in progress finish.

Connections are :class:`~gateway.ingress.wire.Connection` (httptools underneath). One task
ticks every second: it advances the clock the connections stamp their activity with, renews
the ``Date`` header, and closes connections idle past the keep-alive timeout or whose
request is late (408). No timer is armed per request or per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.utils import formatdate

from .wire import Connection, Dispatch, FrontState, Limits

log = logging.getLogger(__name__)

_BACKLOG = 1024
_TICK_SECONDS = 1.0


class HttpFront:
    """Serves ``dispatch`` on ``host:port`` (0 picks a port; :attr:`port` tells it)."""

    def __init__(self, dispatch: Dispatch, limits: Limits) -> None:
        self._state = FrontState(dispatch, limits)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def connections(self) -> int:
        return len(self._state.connections)

    async def start(self, host: str, port: int) -> None:
        self._advance()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self._state), host, port, backlog=_BACKLOG, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ticker = asyncio.create_task(self._tick_forever(), name="ingress-http-ticker")

    async def stop(self, drain_timeout: float) -> None:
        """Stop accepting; let each connection finish the request it has begun and the
        answers it owes (at most ``drain_timeout`` seconds), then close the rest."""
        if self._server is None:
            return
        self._server.close()
        connections = self._state.connections
        emptied = self._state.emptied = asyncio.Event()
        for connection in list(connections):
            connection.drain()
        if connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await emptied.wait()
        for connection in list(connections):
            log.warning("closing a connection still busy after the drain timeout")
            connection.abort()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self._server.wait_closed()
        self._server = None

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            self._advance()
            tick = self._state.tick
            for connection in list(self._state.connections):
                connection.check(tick)

    def _advance(self) -> None:
        self._state.new_second(int(time.monotonic()), formatdate(usegmt=True).encode("ascii"))
