"""A bound on every wait for Kafka's acknowledgement, without a timer per record.

A publisher hands records over in a steady stream and every record gets the same delivery
timeout, so their deadlines come in the order they were handed over: one queue and one timer
for its head are enough. A record whose acknowledgement has not come by its deadline is
failed with :class:`~gateway.errors.KafkaUnavailableError`; it may still be stored later (the
producer keeps it), which is safe because a repeat carries the same ``event_id``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from gateway.errors import KafkaUnavailableError


class DeliveryDeadlines:
    """Fails the futures given to :meth:`watch` that are still pending ``seconds`` later."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._queue: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[Any]) -> None:
        loop = asyncio.get_running_loop()
        # Settled heads go first: in the usual case (acknowledged in order) the queue holds
        # only what is still in flight.
        while self._queue and self._queue[0][1].done():
            self._queue.popleft()
        self._queue.append((loop.time() + self.seconds, future))
        if self._timer is None:
            self._timer = loop.call_at(self._queue[0][0], self._expire)

    def close(self) -> None:
        """Stop the timer and fail what is still watched: after this nobody waits."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(KafkaUnavailableError("the publisher stopped"))

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, future = self._queue.popleft()
            if not future.done():
                future.set_exception(
                    KafkaUnavailableError(
                        f"no acknowledgement from Kafka within {self.seconds:g} s"
                    )
                )
        while self._queue and self._queue[0][1].done():
            self._queue.popleft()
        self._timer = loop.call_at(self._queue[0][0], self._expire) if self._queue else None
