"""Concurrency and per-window limits, so the provider never has to answer error 9.

- :class:`PrioritySemaphore`: at most ``value`` requests at once; urgent waiters go first.
- :class:`WindowLimiter`: at most ``limit`` requests per ``window_seconds`` for each key
  (one status query key per message, one key for balance queries). Memory is bounded by the
  keys used within the last window.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager


class PrioritySemaphore:
    """A semaphore whose urgent waiters are served before bulk ones (FIFO within each)."""

    def __init__(self, value: int) -> None:
        self._free = value
        self._waiters: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @property
    def waiting(self) -> int:
        return len(self._waiters[True]) + len(self._waiters[False])

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, urgent: bool = False) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[urgent].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as it was cancelled: pass the slot on
            else:
                self._waiters[urgent].remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._waiters[True], self._waiters[False]):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to the waiter
                    return
        self._free += 1


class WindowLimiter:
    """At most ``limit`` acquisitions per ``window_seconds`` and key (a sliding window)."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """Keys with an acquisition inside the window (or not yet pruned)."""
        return len(self._events)

    async def acquire(self, key: Hashable = None) -> None:
        """Wait until ``key`` may be used again, and record the use."""
        # The wait is known exactly; there is no event to wait for instead.
        while (wait := self.try_acquire(key)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def try_acquire(self, key: Hashable = None) -> float:
        """Record a use of ``key`` and return 0, or return how long to wait first."""
        now = self._clock()
        self._prune(now)
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
        while events and events[0] <= now - self._window:
            events.popleft()
        if len(events) >= self._limit:
            return events[0] + self._window - now
        events.append(now)
        self._events.move_to_end(key)
        return 0.0

    def _prune(self, now: float) -> None:
        # Keys are ordered by their latest use; a key last used a window ago has no events
        # left that count.
        while self._events:
            key, events = next(iter(self._events.items()))
            if events and events[-1] > now - self._window:
                return
            del self._events[key]
