"""A bound on submits whose outcome is not yet durable on Kafka.

After a crash, a request is submitted again if its result had not reached Kafka: both while
the provider has not answered yet (the SMPP window) and after it answered but before Kafka
acknowledged the result. :class:`Exposure` bounds the two together, so the submits a crash
can repeat are at most ``limit`` SMS parts. A request holds its weight (its parts) from just
before its first submit until its result is acknowledged; urgent requests queue first.

At shutdown :meth:`Exposure.close` fails every request still waiting for slots (it has
submitted nothing yet, so it is simply left for redelivery) and every later one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Exposure:
    """Weighted slots, first come first served, urgent ahead of bulk.

    :meth:`try_take` is the usual way in (room and nobody waiting: no coroutine, no
    future); :meth:`take` waits its turn otherwise, and :meth:`reserve` queues without a
    coroutine (the lane's way, :mod:`gateway.sender.lane`). Every weight taken is given
    back with :meth:`release`.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the exposure limit must be at least 1")
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._closed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def close(self, error: BaseException) -> None:
        """Grant nothing more: every waiter, and every later request, fails with ``error``."""
        self._closed = error
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(error)

    def weight(self, parts: int) -> int:
        """What a request of ``parts`` SMS parts holds: at least one slot, at most all."""
        return max(1, min(parts, self.limit))

    def try_take(self, weight: int) -> bool:
        """Take ``weight`` slots (see :meth:`weight`) if they are free and nobody waits;
        raises the close error once closed."""
        if self._closed is not None:
            raise self._closed
        if not self._waiters and self.used + weight <= self.limit:
            self.used += weight
            return True
        return False

    def reserve(self, weight: int, *, urgent: bool) -> asyncio.Future[None] | None:
        """Take ``weight`` slots now (None) or queue for them: a future done once they are
        taken, or failed with the close error. A caller that stops waiting fails or
        cancels the future (the slots then go to the next in line); one that finds it
        granted gives the weight back. Raises the close error once closed."""
        if self.try_take(weight):
            return None
        loop = self._loop
        if loop is None:  # looked up once: on Python 3.11 each lookup is a getpid() call
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (weight, future)
        if urgent:
            self._waiters.appendleft(entry)
        else:
            self._waiters.append(entry)
        return future

    async def take(self, weight: int, *, urgent: bool) -> None:
        """Wait for ``weight`` slots (see :meth:`weight`); raises the close error once
        closed."""
        future = self.reserve(weight, urgent=urgent)
        if future is None:
            return
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(weight)  # granted just as we were cancelled
            elif (weight, future) in self._waiters:
                self._waiters.remove((weight, future))
            raise

    def release(self, weight: int) -> None:
        """Give back ``weight`` slots taken earlier."""
        self.used -= weight
        self._wake()

    @asynccontextmanager
    async def hold(self, parts: int, *, urgent: bool) -> AsyncIterator[None]:
        """Hold the slots of ``parts`` SMS parts for the duration of the block."""
        weight = self.weight(parts)
        await self.take(weight, urgent=urgent)
        try:
            yield
        finally:
            self.release(weight)

    def _wake(self) -> None:
        while self._waiters:
            weight, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.used + weight > self.limit:
                return
            self._waiters.popleft()
            self.used += weight
            future.set_result(None)
