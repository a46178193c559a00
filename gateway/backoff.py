"""How long to wait before trying again: one exponential backoff policy for every retry.

The ceiling of retry ``attempt`` (0 for the first retry) is ``base * multiplier**attempt``,
never more than ``cap``; the wait is drawn below that ceiling by the jitter, so that many
waiters (the binds of several pods, the records of one lane) do not come back in step.
Following "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):

- ``FULL``: uniform in [0, ceiling): the least load on a peer that is shared, the shortest
  wait on average;
- ``EQUAL``: uniform in [ceiling / 2, ceiling): never much sooner than the ceiling, for a
  peer that is down rather than busy;
- ``NONE``: the ceiling itself.

Pure: the random numbers come from the ``random.Random`` the caller passes (a seeded one in
tests); nothing here sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Jitter(Enum):
    """Where the wait falls below the ceiling (see the module docstring)."""

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff from ``base_seconds``, growing by ``multiplier`` a retry, at most
    ``cap_seconds``."""

    base_seconds: float
    cap_seconds: float
    multiplier: float = 2.0
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        # The bounds come from settings and are taken as they are (a cap below the base caps
        # every wait, as it always has); a shrinking multiplier can only be a mistake here.
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry ``attempt`` (0 for the first)."""
        if attempt < 0:
            raise ValueError("attempt must not be negative")
        try:
            grown = self.base_seconds * self.multiplier**attempt
        except OverflowError:  # far past the cap
            grown = self.cap_seconds
        return max(0.0, min(self.cap_seconds, grown))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry ``attempt`` (0 for the first), drawn with ``rng``."""
        ceiling = self.ceiling(attempt)
        if self.jitter is Jitter.FULL:
            return ceiling * rng.random()
        if self.jitter is Jitter.EQUAL:
            return ceiling / 2 * (1 + rng.random())
        return ceiling
