"""How fast to submit: an adaptive rate per account, and the pacing of submits at that rate.

The provider allows a rate per account (30 SMS parts per second by default; SMPP seed, "The
speed of mailing lists") and answers ESME_RTHROTTLED above it, after which "the client must
repeat the sending, reducing the overall speed on its side". :class:`AdaptiveRate` does that:

- **cut at once, a little**: the first throttling answer after a quiet spell cuts to just
  below what the provider accepted over the last second, by at most ``max_cut`` (a lone
  throttle in a momentary dip must not cut to the dip); a throttle while probing goes back
  to the rate the probe started from;
- **measure, then drain**: when throttling goes on (answers less than
  ``PERSISTENT_THROTTLE_SECONDS`` apart) for ``ESTIMATE_SECONDS`` and ``ESTIMATE_PARTS``,
  and densely (``DENSE_THROTTLING``), the sender has offered more than the provider took
  all that time, so what it took since the first answer is the provider's limit (sparse
  throttling only says that bursts were too big). The provider's bucket is empty by then, and
  sending just under the limit would refill it so slowly that ordinary bursts (the event
  loop catching up) would be throttled for seconds; so the rate first drains to
  ``drain_factor`` of the limit for ``drain_seconds``, then settles at ``cut_factor`` of
  it. Throttling answers during the drain are for submits sent before it and change
  nothing;
- **hold, then probe**: after a cut the rate holds for ``hold_seconds``, then grows
  exponentially (doubling every ``probe_doubling_seconds``) up to ``max_per_second``, so a
  raised limit is found within a few seconds while a steady limit costs about one
  throttling answer per hold and probe.

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

from gateway.settings.sender import RateSettings

# Throttling answers less than this apart belong to one episode.
PERSISTENT_THROTTLE_SECONDS = 1.0
# How long, and over how many accepted parts, an episode is measured before its limit is
# trusted: at 500/s half a second is 250 parts (the rate within about 1 %); at 15/s it takes
# 20 parts, so that one part more or less is 5 %, not 13 %.
ESTIMATE_SECONDS = 0.5
ESTIMATE_PARTS = 20
# Throttling answers per accepted part above which an episode measures the provider's limit
# (a halved limit gives about one per part; a burst now and then, a few per thousand).
DENSE_THROTTLING = 0.02


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
        slots = self._slots
        if slots:
            last, count = slots[-1]
            if last == slot:  # expired up to this slot when it began
                slots[-1] = (slot, count + parts)
                return
        slots.append((slot, parts))
        self._expire(slot)

    def per_second(self, now: float) -> float:
        """The rate over the slots kept: the last ``window - 1`` whole slots and the current
        one as far as ``now`` (dividing by the whole window would read up to a slot low)."""
        slot = math.floor(now / self.SLOT)
        self._expire(slot)
        span = now - (slot - self._window + 1) * self.SLOT
        return sum(count for _, count in self._slots) / span

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
        self._drain_rate = self._base
        self._drain_until = -math.inf
        # Parts accepted so far; when and at which count the current throttling episode began.
        self._accepted_total = 0
        self._episode_start = now
        self._episode_mark = 0
        self._episode_throttled = 0
        self._last_throttle = -math.inf
        self.accepted = AcceptedRate()
        self.cuts = 0

    def rate(self, now: float) -> float:
        """The rate allowed at ``now``."""
        if now < self._drain_until:
            return self._drain_rate
        probing = now - self._since - self.settings.hold_seconds
        if probing <= 0 or self._base >= self._ceiling:
            return self._base
        growth: float = 2.0 ** (probing / self.settings.probe_doubling_seconds)
        return min(self._ceiling, self._base * growth)

    def on_accepted(self, parts: int, now: float) -> None:
        self.accepted.add(parts, now)
        self._accepted_total += parts

    def on_throttled(self, now: float) -> bool:
        """The provider throttled a submit; returns whether the rate was cut."""
        if now < self._drain_until:
            return False  # the provider's bucket is refilling after the last measured cut
        if now - self._last_throttle > PERSISTENT_THROTTLE_SECONDS:
            # A new episode: cut a little at once, and start measuring what gets through.
            self._episode_start, self._episode_mark = now, self._accepted_total
            self._episode_throttled = 1
            self._last_throttle = now
            if now - self._last_cut < self.settings.cut_guard_seconds:
                return False
            self._cut(self._first_cut_target(self.rate(now), now), now, drain=False)
            return True
        self._last_throttle = now
        self._episode_throttled += 1
        measured = self._accepted_total - self._episode_mark
        if now - self._episode_start < ESTIMATE_SECONDS or measured < ESTIMATE_PARTS:
            return False
        # Throttling went on all along. If it was dense, we offered more than the provider
        # took, so what it took is its limit. If it was sparse, what got through is what we
        # offered (a busy sender, retries waiting their turn), which says nothing of the
        # limit: only bursts were throttled, and the drain is what they need.
        current = self.rate(now)
        limit = measured / (now - self._episode_start)
        dense = self._episode_throttled >= DENSE_THROTTLING * measured
        self._cut(min(current, limit) if dense else current, now, drain=True)
        self._last_throttle = -math.inf
        return True

    def _first_cut_target(self, current: float, now: float) -> float:
        # What the provider took over the last second, once a whole second of sending stands
        # behind it (not right after a start). A lone throttle that lands in a momentary dip
        # must not cut to the dip: a cut before the episode is measured takes at most
        # ``max_cut``. A throttle while probing says the limit lies below the probe: back to
        # the limit the probe started from.
        accepted = self.accepted.per_second(now) if self.accepted.covers(now) else 0.0
        target = min(current, accepted) if accepted > 0 else current
        target = max(target, current * (1.0 - self.settings.max_cut))
        if current > self._base:
            target = min(target, self._base / self.settings.cut_factor)
        return target

    def _cut(self, target: float, now: float, *, drain: bool) -> None:
        # Throttling means the provider's bucket is empty: sending just below its limit would
        # refill it too slowly to absorb the next burst, so first drain a little further.
        floor = self.settings.min_per_second
        self._base = max(floor, target * self.settings.cut_factor)
        self._drain_rate = max(floor, target * self.settings.drain_factor)
        self._last_cut = self._since = now
        if drain:
            self._drain_until = self._since = now + self.settings.drain_seconds
        self.cuts += 1


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

    def try_take(self, parts: int, rate: float, now: float) -> bool:
        """:meth:`take` the parts if :meth:`delay` would be 0 (one refill for both)."""
        # _refill and _capacity written out: this runs for every submit.
        capacity = max(1.0, rate * self._burst_seconds)
        tokens = min(capacity, self._tokens + max(0.0, now - self._updated) * rate)
        self._updated = now
        if tokens < min(float(parts), capacity):
            self._tokens = tokens
            return False
        self._tokens = tokens - parts
        return True

    def would_take(self, parts: int, rate: float, now: float) -> bool:
        """Whether :meth:`try_take` would take the parts (nothing taken)."""
        capacity = max(1.0, rate * self._burst_seconds)
        tokens = min(capacity, self._tokens + max(0.0, now - self._updated) * rate)
        return tokens >= min(float(parts), capacity)

    def _capacity(self, rate: float) -> float:
        return max(1.0, rate * self._burst_seconds)

    def _refill(self, rate: float, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity(rate), self._tokens + elapsed * rate)
        self._updated = now
