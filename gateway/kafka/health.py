"""Whether a publisher can write to Kafka now, for ``/readyz`` (no I/O; time is passed in).

Every acknowledgement and every failed delivery of the publisher is a signal; when none came
for an interval (an idle role), a probe (a metadata request) stands in. Ready means: the
latest signal was a success, and it is recent. A probe is asked for only while nothing is
published, so a metadata answer never hides publishes that keep failing (a broker that
answers metadata may still refuse writes: a partition without a leader, too few in-sync
replicas, a producer whose sequence broke).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

# How often an idle publisher is probed.
PROBE_INTERVAL_SECONDS = 5.0
# Signals older than this many intervals no longer make the publisher ready.
STALE_INTERVALS = 3


class PublishHealth:
    """The latest signals about a publisher's writes, and the readiness they add up to."""

    def __init__(self, interval_seconds: float = PROBE_INTERVAL_SECONDS) -> None:
        self.interval_seconds = interval_seconds
        self._at: float | None = None
        self._ok = False
        self._problem = "nothing published or probed yet"

    def delivered(self, now: float) -> None:
        self._at, self._ok = now, True

    def failed(self, now: float, problem: str) -> None:
        self._at, self._ok, self._problem = now, False, problem

    def probed(self, now: float, ok: bool) -> None:
        if ok:
            self.delivered(now)
        else:
            self.failed(now, "no broker answered a metadata request")

    def needs_probe(self, now: float) -> bool:
        """Whether nothing said recently how writes fare."""
        return self._at is None or now - self._at >= self.interval_seconds

    def ready(self, now: float) -> tuple[bool, str]:
        """(ready, why) for /readyz."""
        if self._at is None or not self._ok:
            return False, f"kafka not writable: {self._problem}"
        age = now - self._at
        if age > STALE_INTERVALS * self.interval_seconds:
            return False, f"kafka not confirmed writable for {age:.0f} s"
        return True, "kafka writable"


class Probed(Protocol):
    health: PublishHealth

    async def probe(self) -> None:
        """Ask the brokers whether they answer, within the health's interval; the outcome
        goes to ``health``."""


async def keep_probed(publisher: Probed) -> None:
    """Probe ``publisher`` whenever its health has no recent signal; runs until cancelled."""
    interval = publisher.health.interval_seconds
    while True:
        if publisher.health.needs_probe(time.monotonic()):
            await publisher.probe()
        await asyncio.sleep(interval / 2)
