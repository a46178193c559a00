"""Completing input records in order once Kafka acknowledged everything they produced.

Both stages publish without waiting: each input record's outputs are handed to the
producer, and the record is *completed* (its offset may be committed: faust's ``ack``, or the
route stage's next offset) only once Kafka acknowledged every one of its outputs **and** every
record taken before it was completed. So an offset is never committed past an output that is
not durable, and the stage never waits for a round trip per record or per batch: acks from
the producer's batches complete whole runs of records at once.

If an output fails, nothing taken from then on is ever completed: no commit can pass the
failed record, whatever happens next (a shutdown, another batch that succeeds). The owner sees
the failure through :attr:`InOrderAcks.failure` and stops the worker.

No I/O here: the producer's callbacks call :meth:`Slot.settle`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.errors import GatewayError

T = TypeVar("T")


class Slot(Generic[T]):
    """One input record waiting for its outputs' acknowledgements."""

    __slots__ = ("_owner", "item", "remaining")

    def __init__(self, owner: InOrderAcks[T], item: T, outputs: int) -> None:
        self._owner = owner
        self.item = item
        self.remaining = outputs

    def settle(self, error: GatewayError | None) -> None:
        """One output acknowledged (``error`` None) or failed."""
        if error is not None:
            self._owner.fail(error)
            return
        self.remaining -= 1
        if self.remaining == 0:
            self._owner.advance()


class InOrderAcks(Generic[T]):
    """Records complete in the order they were taken, each once all its outputs are acked."""

    def __init__(self, complete: Callable[[T], None]) -> None:
        self._complete = complete
        self._slots: deque[Slot[T]] = deque()
        self._drained = asyncio.Event()
        self._drained.set()
        self.failure: GatewayError | None = None
        self.failed = asyncio.Event()

    def __len__(self) -> int:
        """Records taken and not completed yet."""
        return len(self._slots)

    def take(self, item: T, outputs: int) -> Slot[T]:
        """Track ``item``; settle the returned slot once per output."""
        slot = Slot(self, item, outputs)
        self._slots.append(slot)
        self._drained.clear()
        if outputs == 0:
            self.advance()
        return slot

    def advance(self) -> None:
        """Complete every record at the head whose outputs are all acknowledged."""
        if self.failure is not None:
            return
        slots, complete = self._slots, self._complete
        while slots and slots[0].remaining <= 0:
            complete(slots.popleft().item)
        if not slots:
            self._drained.set()

    def fail(self, error: GatewayError) -> None:
        """Stop completing anything: the record that produced ``error`` must be replayed."""
        if self.failure is None:
            self.failure = error
            self.failed.set()

    async def drained(self, timeout_seconds: float) -> bool:
        """Wait until every record taken is completed; False on a timeout or a failure."""
        waiters = [
            asyncio.ensure_future(self._drained.wait()),
            asyncio.ensure_future(self.failed.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout_seconds, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.failure is None and not self._slots

    async def below(self, limit: int, timeout_seconds: float) -> None:
        """Back-pressure: wait while more than ``limit`` records are in flight.

        Raises the failure if one came; returns after ``timeout_seconds`` in any case (the
        producer's own delivery timeout settles every record well before that)."""
        if len(self._slots) > limit:
            await self.drained(timeout_seconds)
        if self.failure is not None:
            raise self.failure
