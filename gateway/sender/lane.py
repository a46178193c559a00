"""One topic's consumption: fetch, bounded concurrency, offsets committed only when durable.

The sender runs two lanes, urgent (``smsc.send.priority.v1``) and bulk (``smsc.send.v1``),
each with its own consumer group, so a deep bulk backlog never stands between an urgent
request and the broker. A lane starts up to ``max_in_flight`` records; when it is full it
stops fetching (the consumer's bounded prefetch is the only buffer: nothing is
requeued). Offsets move past a record only when every record before it in its partition is
done (:class:`~gateway.sender.offsets.OffsetTracker`). Before records start, the source makes
durable that they may be started (a *claim*, :mod:`gateway.kafka.claims`), so that after a
crash their next consumer knows them as replays; while Kafka does not take the claim, nothing
starts.

With a bound on exposure (:class:`Slots`, the sender's
:class:`~gateway.sender.exposure.Exposure`), a record starts only once one slot of it is
taken for it, in the bound's own line (urgent first): while the bound is full the lane waits
there, once for as many records as the releases let go, instead of every started record
waiting in it a second time. The record's handler takes the slot over (:meth:`Flight.
take_held`) when it may use it at once, and otherwise gives it back before it waits for
anything; what a handler leaves is given back when it returns. So a slot is held for a
record only while it runs without waiting, or while it submits: never while it waits for the
record before it with its key, which may need that slot.

A record starts in its lane's start hook (:data:`Starter`), when there is one: the hook may
carry the record without a task of its own (what it waits for is :attr:`Flight.waiting`,
its answer's callback ends it or hands it on), or, taking nothing, leave it to the handler in
a task of its own (with what it learned, :attr:`Flight.note`). While a record left so waits
for its task to begin, later ones all go to tasks too: handlers begin in the records' order.
A carried record that must wait after all goes on in a task (:meth:`Flight.carry_on`).

A record is in flight from its start until it ends (:meth:`Flight.end`): when its handler
returns, or later, when the handler handed it on (its result offered to the publisher) and
the publisher's acknowledgement ends it; its task may be gone by then. Waiting for records
(a revoke, shutdown) waits for their ends; one given up while its result is with the
publisher keeps its offset uncommitted, whatever Kafka answers later.

A rebalance (:meth:`Lane.on_revoked`) must end before the group's rebalance timeout, or the
group hands the partitions on while this consumer still works on them and both submit the
same requests. So the records of revoked partitions that have not reached the provider
(waiting for their key's turn, an exposure slot or a rate permit) are cancelled at once and
left, uncommitted, for the partitions' next owner; records fetched but not started are
dropped. Only those that may have reached the provider (:meth:`Flight.finishing`) are waited
for, until the revoke deadline (at most ``REVOKE_SECONDS``); what is left then is cancelled
(one carried without a task by cancelling what it waits for: it unwinds in a task as a
cancelled handler would) and comes back to the next owner as a replay. Then the offsets are
committed.

Shutdown (:meth:`Lane.close`, deadlines from :class:`~gateway.shutdown.Shutdown`): records
fetched but not started are left for the next consumer at once, even while the lane waits
for a free slot; the records in flight get until the drain deadline and are then cancelled
(uncommitted, so redelivered); the final commit gives up at the close deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Protocol

from gateway.errors import KafkaUnavailableError
from gateway.kafka.records import ClaimingSource, Partition, Record
from gateway.shutdown import Shutdown

from .offsets import OffsetTracker

log = logging.getLogger(__name__)


class Flight:
    """A record the lane started; ``finishing`` once it must run to its outcome here.

    It ends exactly once (:meth:`end`): when its handler returns True or False, or, if the
    handler returned None, when whoever it handed the record to (the publisher's
    acknowledgement of its result) calls :meth:`end`.
    """

    __slots__ = (
        "_ended",
        "_home",
        "_lane",
        "carried",
        "finishing",
        "held",
        "note",
        "over",
        "record",
        "running",
        "task",
        "waiting",
    )

    def __init__(self, record: Record, lane: Lane, held: int = 0) -> None:
        self.record = record
        self.held = held  # slots of the lane's bound taken for it, not yet taken over
        self.finishing = False
        self.over = False
        self.running = False  # its handler (or the lane's start hook carrying it) has begun
        self.carried = False  # carry_on made it a task that has not begun yet
        self.task: asyncio.Task[None] | None = None
        # What the lane's start hook learned of the record, for its handler.
        self.note: object = None
        # What the record waits for while it is carried without a task (see Lane).
        self.waiting: Cancellable | None = None
        self._lane: Lane | None = lane
        self._home = lane
        self._ended: asyncio.Future[None] | None = None

    def take_held(self) -> int:
        """The slots the lane took for the record (0 or 1), now the caller's to give back."""
        held, self.held = self.held, 0
        return held

    def carry_on(self, work: Coroutine[Any, Any, bool | None]) -> None:
        """Go on with a record carried without a task in a task of its own, ``work`` in
        the place of its handler (its answer likewise ends the record)."""
        self.carried = True
        self.task = self._home._task_for(self, work)

    def finish_here(self) -> None:
        """Part of the record may reach the provider (or its outcome is being published):
        a revoke waits for it instead of leaving it to the next owner."""
        self.finishing = True

    def end(self, durable: bool) -> None:
        """The record is over: its outcome is durable (its offset may be committed), or
        not (it is left for redelivery). Later calls do nothing."""
        if self.over:
            return
        self.over = True
        lane, self._lane = self._lane, None
        if lane is not None:
            lane._ended(self, durable)
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def give_up(self) -> None:
        """The lane stops waiting for it (revoked or shut down): its slot is free again and
        its end, should it come, moves no offset."""
        lane, self._lane = self._lane, None
        if lane is not None:
            lane._ended(self, False)

    def wait(self) -> asyncio.Future[None]:
        """A future done once the record is over (made when first asked for)."""
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
            if self.over:
                self._ended.set_result(None)
        return self._ended


class Cancellable(Protocol):
    """What a record carried without a task waits for; cancelling it makes the record
    unwind as a cancelled handler would."""

    def cancel(self) -> object: ...


class Slots(Protocol):
    """A bound the lane takes one slot of before it starts a record (see the module
    docstring); :class:`~gateway.sender.exposure.Exposure`."""

    def reserve(self, weight: int, *, urgent: bool) -> asyncio.Future[None] | None: ...

    def release(self, weight: int) -> None: ...


# What a handler returns: True or False (the record is over: durable or not), or None (it
# was handed on, and :meth:`Flight.end` will be called).
Handler = Callable[[Flight], Awaitable[bool | None]]
# A lane's start hook: True once it carries the record without a task (see the module
# docstring); False, having taken nothing, to have the handler run in a task.
Starter = Callable[[Flight], bool]

# How long records cancelled at the drain deadline get to unwind.
_CANCEL_GRACE_SECONDS = 0.5
# Waits between attempts to claim records while Kafka does not take the claim.
_CLAIM_RETRY_SECONDS = (0.2, 5.0)
# The longest a revoke waits for its records that reached the provider: half the consumer
# group's rebalance timeout (aiokafka's default, the session timeout: 10 s), so the member
# rejoins in time and keeps its place.
REVOKE_SECONDS = 5.0


class _LaneClosedError(Exception):
    """Ends the lane's wait for a slot of its bound when the lane closes."""


class Lane:
    """Consumes one source and runs ``handler`` per record; see the module docstring.

    :attr:`on_busy` and :attr:`on_idle`, when set, hear when the lane's first record starts
    and its last ends.
    """

    def __init__(
        self,
        name: str,
        source: ClaimingSource,
        handler: Handler,
        *,
        max_in_flight: int,
        fetch_max_records: int,
        drain_timeout_seconds: float,
        revoke_timeout_seconds: float = REVOKE_SECONDS,
        shutdown: Shutdown | None = None,
        slots: Slots | None = None,
        urgent: bool = False,
        starter: Starter | None = None,
    ) -> None:
        self.name = name
        self._starter = starter
        self._slots = slots
        self._urgent = urgent
        self._slot_waiter: asyncio.Future[None] | None = None
        self._source = source
        self._handler = handler
        self._free = max_in_flight
        self._fetch_max = fetch_max_records
        self._drain_timeout = drain_timeout_seconds
        self._revoke_timeout = min(revoke_timeout_seconds, drain_timeout_seconds)
        self._shutdown = shutdown or Shutdown(drain_timeout_seconds)
        self.on_busy: Callable[[], None] | None = None
        self.on_idle: Callable[[], None] | None = None
        self._tracker: OffsetTracker[Partition] = OffsetTracker()
        self._flights: set[Flight] = set()
        self._unbegun = 0  # records whose task has not begun to run their handler
        # Revokes so far, and the revoke each partition was last taken away by: a record
        # fetched before its partition's revoke is not started.
        self._revokes = 0
        self._revoked_by: dict[Partition, int] = {}
        self._progress = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.admitting = asyncio.Event()
        self.admitting.set()

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and start records until ``stop``; then finish them (or give up) and commit."""
        while not stop.is_set() and not self._closing:
            revokes = self._revokes
            records = await self._claimed(await self._source.fetch(0.1, self._fetch_max))
            await self._start_all(records, revokes)
        await self.drain()
        await self._shutdown.step(f"{self.name}: final offset commit", self.commit())

    def close(self) -> None:
        """Start nothing more; a wait for a free slot or for admission ends now."""
        self._closing = True
        self._shutdown.begin()
        self._progress.set()
        self.admitting.set()
        waiter = self._slot_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(_LaneClosedError())

    async def commit(self) -> None:
        offsets = self._tracker.committable()
        if not offsets:
            return
        try:
            await self._source.commit(offsets)
        except KafkaUnavailableError as exc:
            log.warning("%s: offset commit failed, will retry: %s", self.name, exc)
            return
        self._tracker.committed(offsets)

    async def on_revoked(self, partitions: set[Partition]) -> None:
        """Before a rebalance takes partitions away: leave their records that have not
        reached the provider, let the others finish until the revoke deadline, commit."""
        self._revokes += 1
        self._revoked_by.update(dict.fromkeys(partitions, self._revokes))
        theirs = [f for f in self._flights if f.record.source in partitions]
        left = [flight for flight in theirs if not flight.finishing]
        for flight in left:
            self._cancel(flight)
        late = await self._end(theirs, self._revoke_timeout)
        if left or late:
            log.info(
                "%s: partitions revoked; %d requests left to their next owner before reaching "
                "the provider, %d given up after it (they come back as replays)",
                self.name,
                len(left),
                late,
            )
        await self.commit()
        self._tracker.forget(partitions)

    async def drain(self) -> None:
        """Wait for the records in flight until the drain deadline; cancel what is left."""
        late = await self._end(list(self._flights), self._shutdown.drain_left())
        if late:
            log.warning(
                "%s: %d requests given up at shutdown; they will be redelivered", self.name, late
            )

    async def _end(self, flights: Collection[Flight], seconds: float) -> int:
        """Wait ``seconds`` for ``flights`` to be over, then cancel those left; how many
        were. One whose handler has returned (its result is with the publisher) is given
        up: its offset stays uncommitted, whatever Kafka answers later."""
        if not flights:
            return 0
        waits = {flight.wait(): flight for flight in flights}
        _, late = await asyncio.wait(waits, timeout=seconds)
        tasks: list[asyncio.Future[Any]] = []
        for wait in late:
            flight = waits[wait]
            if flight.task is not None and not flight.task.done():
                self._cancel(flight)
                tasks.append(flight.task)
            elif flight.task is None and flight.waiting is not None:
                flight.waiting.cancel()  # it unwinds in a task of its own
                tasks.append(wait)
            else:
                flight.give_up()
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_GRACE_SECONDS)
        return len(late)

    async def _claimed(self, records: list[Record]) -> list[Record]:
        """``records`` once claimed (those still ours); none if the lane closes first."""
        delay, longest = _CLAIM_RETRY_SECONDS
        while records and not self._closing:
            try:
                return await self._source.claim(records)
            except KafkaUnavailableError as exc:
                log.warning("%s: records not claimed, retrying: %s", self.name, exc)
            self._progress.clear()
            waiter = asyncio.ensure_future(self._progress.wait())
            await asyncio.wait([waiter], timeout=delay)
            waiter.cancel()
            delay = min(delay * 2, longest)
        return []

    def _may_start(self) -> bool:
        """Whether a record may start now: admitted and a free slot."""
        return self._free > 0 and not self._closing and self.admitting.is_set()

    async def _admit(self) -> bool:
        """Wait until the lane may start a record and has a free slot; False if closing."""
        while not self._closing:
            if not self.admitting.is_set():
                await self.admitting.wait()
            elif self._may_start():
                self._free -= 1
                return True
            else:
                self._progress.clear()
                await self._progress.wait()
        return False

    async def _start_all(self, records: list[Record], revokes: int) -> None:
        """Start ``records`` as slots free up, except those of partitions revoked since they
        were fetched (after ``revokes`` revokes): those are their next owner's. Once the lane
        closes, the rest are left uncommitted for the next consumer."""
        revoked_by = self._revoked_by
        for record in records:
            if revoked_by and revoked_by.get(record.source, -1) > revokes:
                continue
            if self._may_start():
                self._free -= 1
            elif not await self._admit():
                return
            held = 0
            if self._slots is not None:
                held = await self._hold(self._slots)
                if not held:
                    self._free += 1
                    return
            if revoked_by and revoked_by.get(record.source, -1) > revokes:
                self._free += 1  # revoked while it waited for a slot
                if self._slots is not None and held:
                    self._slots.release(held)
                continue
            self._start(record, held)

    async def _hold(self, slots: Slots) -> int:
        """One slot of the bound for the next record, waited for in the bound's line; 0 if
        the lane closes first."""
        try:
            waiter = slots.reserve(1, urgent=self._urgent)
        except Exception:
            if self._closing:  # the bound closed at shutdown
                return 0
            raise
        if waiter is None:
            return 1
        self._slot_waiter = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                slots.release(1)  # granted just as the lane was cancelled
            raise
        except Exception:
            if self._closing:  # failed by close(), or the bound closed at shutdown
                return 0
            raise
        finally:
            self._slot_waiter = None
        if self._closing:
            slots.release(1)
            return 0
        return 1

    def _start(self, record: Record, held: int = 0) -> None:
        self._tracker.track(record.source, record.offset)
        flight = Flight(record, self, held)
        if not self._flights and self.on_busy is not None:
            self.on_busy()
        self._flights.add(flight)
        # The loop's own create_task: asyncio.create_task looks the loop up, which on Python
        # 3.11 is a getpid() system call per record.
        # Not while a record started before it waits for its task to begin: the handler
        # would then enter its key's turn after this one.
        if not self._unbegun and self._starter is not None and self._starter(flight):
            flight.running = True  # its handling began in the hook
            return
        self._unbegun += 1
        flight.task = self._task_for(flight)

    def _task_for(
        self, flight: Flight, work: Coroutine[Any, Any, bool | None] | None = None
    ) -> asyncio.Task[None]:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.create_task(self._run_one(flight, work))

    def _ended(self, flight: Flight, durable: bool) -> None:
        """A flight is over (or given up): its slot is free; its offset may be committed."""
        if durable:
            record = flight.record
            self._tracker.complete(record.source, record.offset)
        if flight.held:
            self._give_back(flight)
        self._flights.discard(flight)
        self._free += 1
        self._progress.set()
        if not self._flights and self.on_idle is not None:
            self.on_idle()

    def _cancel(self, flight: Flight) -> None:
        """Cancel the flight's task; one cancelled before it ran ends here (nothing else
        would end it)."""
        task = flight.task
        if task is None or task.done():
            return
        if flight.carried:
            # Carried on, not begun: it unwinds from where it stood (cancelled before it
            # began, its work would never run).
            if flight.waiting is not None:
                flight.waiting.cancel()
            return
        task.cancel()
        if not flight.running:
            self._unbegun -= 1  # it will not begin
            flight.end(False)

    async def _run_one(
        self, flight: Flight, work: Coroutine[Any, Any, bool | None] | None = None
    ) -> None:
        durable: bool | None = False
        if work is None:
            self._unbegun -= 1
        flight.running = True
        flight.carried = False
        try:
            durable = await (self._handler(flight) if work is None else work)
        finally:
            if flight.held:
                self._give_back(flight)
            if durable is not None:
                flight.end(durable)

    def _give_back(self, flight: Flight) -> None:
        """The slot taken for the flight and not taken over by its handler."""
        if self._slots is not None:
            self._slots.release(flight.take_held())
