"""How fast to submit: an adaptive rate per account, and the pacing of submits at that rate.

The provider allows a rate per account (30 SMS parts per second by default; SMPP seed, "The
speed of mailing lists") and answers ESME_RTHROTTLED above it, after which "the client must
repeat the sending, reducing the overall speed on its side". :class:`AdaptiveRate` does that:

- **cut on throttling**: to just below what the provider actually accepted over the last
  second, so a lowered limit is found within a couple of cuts; the first cut after a quiet
  spell takes at most ``max_cut`` (a lone throttle in a momentary dip does not cut to the
  dip); never more than once per ``cut_guard_seconds`` (one burst of answers is one signal);
- **hold, then probe**: after a cut the rate holds for ``hold_seconds``, then grows
  exponentially (doubling every ``probe_doubling_seconds``) up to ``max_per_second``, so a
  raised limit is found within a few seconds while a steady limit costs one throttling
  answer every few seconds.

:class:`TokenBucket` turns a rate into permits: it refills at the current rate and holds at
most ``burst_seconds`` worth, so submits leave evenly spaced rather than in bursts the
provider would throttle. A message of several parts takes all its tokens at once (the parts
of a long message must reach the provider within a minute and are sent back to back); the
bucket may go into debt for it, and the next message waits until it is paid off.

Both are pure: every method takes ``now``, a monotonic time in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateSettings:
    per_second: float = 30.0
    # Probing above ``per_second`` is allowed up to this rate; equal means never above it.
    max_per_second: float | None = None
    min_per_second: float = 1.0
    # A cut lands this far below the accepted rate (0.985 keeps goodput above 98 %).
    cut_factor: float = 0.985
    cut_guard_seconds: float = 0.25
    max_cut: float = 0.1
    hold_seconds: float = 4.0
    probe_doubling_seconds: float = 1.0
    burst_seconds: float = 0.05

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.per_second <= 0 or self.min_per_second <= 0:
            found.append("per_second and min_per_second must be positive")
        if self.max_per_second is not None and self.max_per_second < self.per_second:
            found.append("max_per_second must be at least per_second")
        if not 0.5 <= self.cut_factor < 1.0:
            found.append("cut_factor must be in [0.5, 1)")
        return found


PERSISTENT_THROTTLE_SECONDS = 1.0


class AcceptedRate:
    """Parts the provider accepted per second, over a sliding window of 100 ms slots."""

    SLOT = 0.1

    def __init__(self, window_seconds: float = 1.0) -> None:
        self._slots: deque[tuple[int, int]] = deque()
        self._window = max(1, round(window_seconds / self.SLOT))
        self._first: float | None = None

    def covers(self, now: float) -> bool:
        """Whether acceptances span a whole window, so the measured rate can be trusted."""
        return self._first is not None and now - self._first >= self._window * self.SLOT

    def add(self, parts: int, now: float) -> None:
        if self._first is None:
            self._first = now
        slot = math.floor(now / self.SLOT)
        if self._slots and self._slots[-1][0] == slot:
            self._slots[-1] = (slot, self._slots[-1][1] + parts)
        else:
            self._slots.append((slot, parts))
        self._expire(slot)

    def per_second(self, now: float) -> float:
        self._expire(math.floor(now / self.SLOT))
        return sum(count for _, count in self._slots) / (self._window * self.SLOT)

    def _expire(self, slot: int) -> None:
        while self._slots and self._slots[0][0] <= slot - self._window:
            self._slots.popleft()


class AdaptiveRate:
    """The rate to send at, cut on throttling and probed back up; see the module docstring."""

    def __init__(self, settings: RateSettings, now: float) -> None:
        self.settings = settings
        self._ceiling = settings.max_per_second or settings.per_second
        self._base = settings.per_second
        self._since = now
        self._last_cut = -math.inf
        self.accepted = AcceptedRate()
        self.cuts = 0

    def rate(self, now: float) -> float:
        """The rate allowed at ``now``."""
        probing = now - self._since - self.settings.hold_seconds
        if probing <= 0 or self._base >= self._ceiling:
            return self._base
        growth: float = 2.0 ** (probing / self.settings.probe_doubling_seconds)
        return min(self._ceiling, self._base * growth)

    def on_accepted(self, parts: int, now: float) -> None:
        self.accepted.add(parts, now)

    def on_throttled(self, now: float) -> bool:
        """The provider throttled a submit; returns whether the rate was cut."""
        if now - self._last_cut < self.settings.cut_guard_seconds:
            return False
        current = self.rate(now)
        # What the provider took over the last second finds a lowered limit in one step, but
        # only once a whole second of sending stands behind it (not right after a start).
        accepted = self.accepted.per_second(now) if self.accepted.covers(now) else 0.0
        target = min(current, accepted) if accepted > 0 else current
        # A lone throttle that lands in a momentary dip must not cut to the dip: the first cut
        # after a quiet spell is at most ``max_cut``. Throttling that goes on within a second of
        # the last cut is a lower limit, and the measured rate is followed in full.
        if now - self._last_cut > PERSISTENT_THROTTLE_SECONDS:
            target = max(target, current * (1.0 - self.settings.max_cut))
        self._base = max(self.settings.min_per_second, target * self.settings.cut_factor)
        self._since = self._last_cut = now
        self.cuts += 1
        return True

    def set_ceiling(self, per_second: float, now: float) -> None:
        """A new configured rate (for example a changed share between replicas)."""
        self._ceiling = max(per_second, self.settings.max_per_second or 0.0)
        self._base = min(self._base, self._ceiling) if self._base else per_second
        self._since = now


class TokenBucket:
    """Permits at a changing rate, with little burst; parts of one message taken together."""

    def __init__(self, burst_seconds: float, now: float) -> None:
        self._burst_seconds = burst_seconds
        self._tokens = 1.0
        self._updated = now

    def delay(self, parts: int, rate: float, now: float) -> float:
        """Seconds until ``parts`` may go at ``rate``; 0 means take them now with :meth:`take`."""
        self._refill(rate, now)
        needed = min(float(parts), self._capacity(rate))
        if self._tokens >= needed:
            return 0.0
        return (needed - self._tokens) / rate

    def take(self, parts: int, rate: float, now: float) -> None:
        self._refill(rate, now)
        self._tokens -= parts

    def _capacity(self, rate: float) -> float:
        return max(1.0, rate * self._burst_seconds)

    def _refill(self, rate: float, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity(rate), self._tokens + elapsed * rate)
        self._updated = now
