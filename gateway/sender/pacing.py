"""Submit permits at the adaptive rate, urgent requests first.

Waiters queue in two lines; whenever the bucket allows, the head of the urgent line is served
before any bulk waiter. No task runs for this: the gate pumps on every request and on one
timer set for when the head of the line can go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from .ratelimit import AdaptiveRate, TokenBucket

_Waiter = tuple[int, "asyncio.Future[None]"]


class SubmitGate:
    """Hands out permits for SMS parts at the account's current rate."""

    def __init__(self, rate: AdaptiveRate, clock: Callable[[], float]) -> None:
        self.rate = rate
        self._clock = clock
        self._bucket = TokenBucket(rate.settings.burst_seconds, clock())
        self._urgent: deque[_Waiter] = deque()
        self._bulk: deque[_Waiter] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._closed: Exception | None = None

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._bulk)

    def current_rate(self) -> float:
        return self.rate.rate(self._clock())

    def try_acquire(self, parts: int, *, urgent: bool) -> bool:
        """Take the permits for ``parts`` SMS parts if they may be submitted now, ahead of
        nobody; raises once the gate is closed."""
        if self._closed is not None:
            raise type(self._closed)(*self._closed.args)  # a fresh one per caller
        return not self._urgent and (urgent or not self._bulk) and self._try_take(parts)

    async def acquire(self, parts: int, *, urgent: bool) -> None:
        """Return once ``parts`` SMS parts may be submitted; raises once the gate is closed."""
        if self.try_acquire(parts, urgent=urgent):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._bulk).append((parts, future))
        self._pump()
        try:
            await future
        except asyncio.CancelledError:
            for line in (self._urgent, self._bulk):
                with contextlib.suppress(ValueError):
                    line.remove((parts, future))
            raise

    def cancel_waiters(self, error: Exception) -> None:
        """Close the gate: every waiter, and every later request, fails with ``error``."""
        self._closed = error
        for line in (self._urgent, self._bulk):
            while line:
                _, future = line.popleft()
                if not future.done():
                    future.set_exception(error)

    def _try_take(self, parts: int) -> bool:
        now = self._clock()
        return self._bucket.try_take(parts, self.rate.rate(now), now)

    def _pump(self) -> None:
        while True:
            line = self._urgent or self._bulk
            if not line:
                return
            parts, future = line[0]
            if future.done():
                line.popleft()
                continue
            now = self._clock()
            rate = self.rate.rate(now)
            delay = self._bucket.delay(parts, rate, now)
            if delay > 0:
                self._wake_at(now + delay)
                return
            self._bucket.take(parts, rate, now)
            line.popleft()
            future.set_result(None)

    def _wake_at(self, when: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        # The gate's clock and the loop's may differ; wake after the same interval.
        self._timer_at = when
        self._timer = loop.call_later(max(0.0, when - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()
