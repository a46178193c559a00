"""Delivery reports owed to each account, kept until the ESME acknowledges them.

A report is always in exactly one place: the time heap (waiting for its delay or for a retry),
its system_id's ready queue, or in flight on a connection bound as a receiver. Reports belong
to the account, not to a connection, so a report whose connection dropped goes back to the
ready queue and reaches the next receiver bind of that system_id, as a real SMSC does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from gateway.smpp.pdu import DeliverSm

from .config import DlrOutcome
from .dlr import AcceptedMessage


@dataclass(slots=True, eq=False)
class PendingDlr:
    """One report until it is acknowledged; ``pdu`` is built once, when it first falls due,
    so a redelivery repeats the same report (same done date)."""

    system_id: str
    message: AcceptedMessage
    outcome: DlrOutcome
    pdu: DeliverSm | None = None
    attempts: int = 0


class DlrOutbox:
    """The time heap and the per-system_id ready queues; :meth:`run` moves reports between
    them and must run as one task for as long as reports are to fall due."""

    def __init__(self, on_due: Callable[[PendingDlr], None]) -> None:
        self._on_due = on_due
        self._heap: list[tuple[float, int, PendingDlr]] = []
        self._order = itertools.count()
        self._ready: dict[str, asyncio.Queue[PendingDlr]] = {}
        self._wake = asyncio.Event()

    def schedule(self, dlr: PendingDlr, due: float) -> None:
        """Make ``dlr`` ready at monotonic time ``due``."""
        heapq.heappush(self._heap, (due, next(self._order), dlr))
        if self._heap[0][2] is dlr:
            self._wake.set()

    def requeue(self, dlr: PendingDlr) -> None:
        """Make ``dlr`` ready now (its connection went away before an answer)."""
        self.ready(dlr.system_id).put_nowait(dlr)

    def ready(self, system_id: str) -> asyncio.Queue[PendingDlr]:
        """Reports due for ``system_id``; receivers of that account take from here."""
        queue = self._ready.get(system_id)
        if queue is None:
            queue = self._ready[system_id] = asyncio.Queue()
        return queue

    def waiting(self) -> int:
        """Reports waiting for their time."""
        return len(self._heap)

    def release_due(self, now: float) -> None:
        """Move every report due at ``now`` to its system_id's ready queue."""
        while self._heap and self._heap[0][0] <= now:
            dlr = heapq.heappop(self._heap)[2]
            self._on_due(dlr)
            self.requeue(dlr)

    async def run(self, clock: Callable[[], float]) -> None:
        """Release reports as they fall due; runs until cancelled."""
        while True:
            now = clock()
            self.release_due(now)
            self._wake.clear()
            delay = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
