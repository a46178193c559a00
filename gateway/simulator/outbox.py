"""DELIVER_SMs owed to each account, kept until the ESME acknowledges them.

Two kinds travel the same way: delivery reports (built when they fall due) and incoming SMS
(built when queued). An item is always in exactly one place: the time heap (waiting for its
delay or for a retry), its system_id's ready queue, or in flight on a connection bound as a
receiver or transceiver. Items belong to the account, not to a connection, so one whose
connection dropped goes back to the ready queue and reaches the next receiving bind of that
system_id, as a real SMSC does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from gateway.settings.simulator import DlrOutcome
from gateway.smpp.pdu import DeliverSm

from .dlr import MESSAGE_TYPE_SMS, AcceptedMessage


@dataclass(slots=True, eq=False)
class PendingDlr:
    """One report until it is acknowledged; ``pdu`` is built once, when it first falls due,
    so a redelivery repeats the same report (same done date). ``message_type`` is the
    0x2001 flag's type: an HLR request (4) is answered with an HLR result."""

    system_id: str
    message: AcceptedMessage
    outcome: DlrOutcome
    pdu: DeliverSm | None = None
    attempts: int = 0
    message_type: int = MESSAGE_TYPE_SMS


@dataclass(slots=True, eq=False)
class PendingIncoming:
    """One incoming SMS (or any PDU queued by a test) until it is acknowledged."""

    system_id: str
    pdu: DeliverSm
    attempts: int = 0


Pending = PendingDlr | PendingIncoming


class DeliverOutbox:
    """The time heap and the per-system_id ready queues; :meth:`run` moves items between
    them and must run as one task for as long as items are to fall due."""

    def __init__(self, on_due: Callable[[Pending], None]) -> None:
        self._on_due = on_due
        self._heap: list[tuple[float, int, Pending]] = []
        self._order = itertools.count()
        self._ready: dict[str, asyncio.Queue[Pending]] = {}
        self._wake = asyncio.Event()

    def schedule(self, item: Pending, due: float) -> None:
        """Make ``item`` ready at monotonic time ``due``."""
        heapq.heappush(self._heap, (due, next(self._order), item))
        if self._heap[0][2] is item:
            self._wake.set()

    def requeue(self, item: Pending) -> None:
        """Make ``item`` ready now (queued now, or its connection went away unanswered)."""
        self.ready(item.system_id).put_nowait(item)

    def ready(self, system_id: str) -> asyncio.Queue[Pending]:
        """Items due for ``system_id``; receiving binds of that account take from here."""
        queue = self._ready.get(system_id)
        if queue is None:
            queue = self._ready[system_id] = asyncio.Queue()
        return queue

    def waiting(self) -> int:
        """Items waiting for their time."""
        return len(self._heap)

    def release_due(self, now: float) -> None:
        """Move every item due at ``now`` to its system_id's ready queue."""
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)[2]
            self._on_due(item)
            self.requeue(item)

    async def run(self, clock: Callable[[], float]) -> None:
        """Release items as they fall due; runs until cancelled."""
        while True:
            now = clock()
            self.release_due(now)
            self._wake.clear()
            delay = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
