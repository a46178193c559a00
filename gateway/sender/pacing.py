"""Submit permits at the adaptive rate, urgent requests first.

Waiters queue in two lines; whenever the bucket allows, the head of the urgent line is served
before any bulk waiter. No task runs for this: the gate pumps on a request that finds the lines
empty and on one timer set for when the head of the line can go.

While the lines are long (a paced backlog), the permits go out in ticks, not one by one: the
timer waits at least :data:`TICK_SHARE` of the bucket's burst (12.5 ms by default), and a
request that joins the lines while it is set waits for it rather than pumping itself. At 1,000
parts/s a pump per permit woke the event loop a thousand times a second, and each waiter let go
took its own turns of the loop, its own SMPP write, its own produce request for its result: the
per-part cost a full window shares out. Letting the dozen permits that accrued meanwhile go
together keeps the rate (the bucket holds four ticks' worth, so none is lost) in a burst well
within the one the bucket allows anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from .ratelimit import AdaptiveRate, TokenBucket

_Waiter = tuple[int, "asyncio.Future[None]"]

# The shortest wait of the gate's timer, as a share of the bucket's burst (its capacity in
# seconds at the current rate): below 1, so that no permit accrues beyond the capacity.
TICK_SHARE = 0.25


class SubmitGate:
    """Hands out permits for SMS parts at the account's current rate."""

    def __init__(self, rate: AdaptiveRate, clock: Callable[[], float]) -> None:
        self.rate = rate
        self._clock = clock
        self._bucket = TokenBucket(rate.settings.burst_seconds, clock())
        self._tick = rate.settings.burst_seconds * TICK_SHARE
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

    def try_acquire(self, parts: int, *, urgent: bool, now: float | None = None) -> bool:
        """Take the permits for ``parts`` SMS parts if they may be submitted now (the
        clock's reading ``now`` when given), ahead of nobody; raises once the gate is
        closed."""
        if self._closed is not None:
            raise type(self._closed)(*self._closed.args)  # a fresh one per caller
        return not self._urgent and (urgent or not self._bulk) and self._try_take(parts, now)

    def admits(self, parts: int, *, urgent: bool) -> float | None:
        """The clock's reading at which :meth:`try_acquire` would take the permits for
        ``parts`` (given that reading), taking nothing; None if it would not, or the gate is
        closed."""
        if self._closed is not None or self._urgent or (self._bulk and not urgent):
            return None
        now = self._clock()
        return now if self._bucket.would_take(parts, self.rate.rate(now), now) else None

    async def acquire(self, parts: int, *, urgent: bool) -> None:
        """Return once ``parts`` SMS parts may be submitted; raises once the gate is closed."""
        if self.try_acquire(parts, urgent=urgent):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._urgent if urgent else self._bulk
        line.append((parts, future))
        if self._timer is None:
            self._pump()
        elif urgent and len(line) == 1:
            # The new head may need fewer permits than the one the timer was set for.
            self._wake_for(parts, self._clock())
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

    def _try_take(self, parts: int, now: float | None = None) -> bool:
        if now is None:
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
            if self._bucket.delay(parts, rate, now) > 0:
                self._wake_for(parts, now)
                return
            self._bucket.take(parts, rate, now)
            line.popleft()
            future.set_result(None)

    def _wake_for(self, parts: int, now: float) -> None:
        """Set the timer for when ``parts`` may go, a tick from now at the soonest."""
        delay = self._bucket.delay(parts, self.rate.rate(now), now)
        self._wake_at(now + max(delay, self._tick))

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
