"""Phone confirmation, step 3: the outcomes the book finds decided are published.

The :class:`~.book.ConfirmationBook` follows ``smsc.waitcall.v1`` (number_issued, the
ingress's ``call`` events, outcomes). ``confirmed`` is published as soon as the call is read;
``expired`` once the deadline and the grace passed, and only after the topic was read to its
current end, so a call already on Kafka is never missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from gateway.errors import KafkaUnavailableError
from gateway.events.envelope import dumps, utc_now
from gateway.events.waitcall import EXPIRED, Outcome, outcome_event
from gateway.kafka.records import Publisher
from gateway.settings.callconfirm import CallConfirmSettings

from .book import ConfirmationBook
from .metrics import CallConfirmMetrics
from .waiting import before_stop

log = logging.getLogger(__name__)

# How long an expiry waits for the topic to be read to its end before trying next tick.
READ_TO_NOW_SECONDS = 10.0


class Freshness(Protocol):
    async def read_to_now(self) -> None:
        """Return once what is on the topic now has been read."""


class Decider:
    """Publishes the outcomes the book finds decided; see the module docstring."""

    def __init__(
        self,
        book: ConfirmationBook,
        publisher: Publisher,
        fresh: Freshness,
        *,
        topic: str,
        settings: CallConfirmSettings,
        metrics: CallConfirmMetrics,
        wake: asyncio.Event | None = None,
        clock: Callable[[], datetime] = utc_now,
        read_to_now_seconds: float = READ_TO_NOW_SECONDS,
    ) -> None:
        self._book = book
        self._read_to_now_seconds = read_to_now_seconds
        self._publisher = publisher
        self._fresh = fresh
        self._topic = topic
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.wake = wake or asyncio.Event()

    async def run(self, stop: asyncio.Event, ready: Awaitable[None]) -> None:
        """From when ``ready`` (the book caught up with the topic) until ``stop``."""
        if not await before_stop(stop, ready):
            return
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.decide()
            except KafkaUnavailableError as exc:
                log.warning("call confirmation outcomes not published, next tick: %s", exc)
            await before_stop(stop, self.wake.wait(), within_seconds=self._settings.tick_seconds)

    async def decide(self) -> int:
        """Publish every outcome decided now; returns how many."""
        now = self._clock()
        due = self._book.due(now)
        if any(o.kind == EXPIRED for o in due):
            try:
                # A call already on Kafka must be read before its request is called expired.
                await asyncio.wait_for(self._fresh.read_to_now(), self._read_to_now_seconds)
            except (TimeoutError, KafkaUnavailableError) as exc:
                log.warning("waitcall topic not read to its end, expiry waits: %s", exc)
                due = [o for o in self._book.due(now) if o.kind != EXPIRED]
            else:
                due = self._book.due(now)
        for outcome in due:
            value = dumps(outcome_event(outcome))
            await self._publisher.publish(self._topic, outcome.phone.encode(), value)
            self._book.ended(outcome.request_id, outcome.decided_at)
            self._count(outcome)
        self._metrics.pending.set(len(self._book))
        self._metrics.unmatched_calls.set(self._book.unmatched_calls)
        return len(due)

    def _count(self, outcome: Outcome) -> None:
        self._metrics.outcomes(outcome.kind).inc()
        if outcome.latency_seconds is not None:
            self._metrics.latency.observe(outcome.latency_seconds)
