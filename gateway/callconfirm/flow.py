"""Phone confirmation by call, one flow on Kafka (no Kafka or HTTP library here).

1. :class:`Issuer`: a request from ``smsc.call-confirm.v1`` is read, its phone given a number
   by wait_call.php, and ``number_issued`` (request_id, tags, the number, every number it
   could have been, the deadline) published on ``smsc.waitcall.v1``, keyed by the phone. A
   request the provider refuses ends ``rejected`` (a blacklisted phone: error 5), one whose
   temporary errors outlast ``give_up_after_seconds`` ends ``failed``; an invalid one is
   dead-lettered and, when its request_id can be read, ``rejected``. A request already
   given a number or ended (the topic says so) is not asked about again.
2. :class:`RequestLane`: fetches requests, hands them to the issuer, and commits a record's
   offset only once what it led to is on Kafka.
3. :class:`Decider`: the :class:`~.book.ConfirmationBook` follows ``smsc.waitcall.v1``
   (number_issued, the ingress's ``call`` events, outcomes); whatever it finds decided is
   published: ``confirmed`` as soon as the call is read, ``expired`` once the deadline and
   the grace passed and the topic was read to its end first.

Pending confirmations are the topic's own content, so a restart loses none: the book is
rebuilt from the last ``history_seconds`` of it before anything is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

from gateway.errors import KafkaUnavailableError
from gateway.events.call_confirm import (
    CallConfirmRequest,
    InvalidCallConfirm,
    parse_call_confirm,
)
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.envelope import dumps, utc_now
from gateway.events.waitcall import (
    EXPIRED,
    FAILED,
    REJECTED,
    NumberIssued,
    Outcome,
    number_issued_event,
    outcome_event,
)
from gateway.http_api.answers import CallNumber
from gateway.http_api.errors import HttpApiError, ProviderApiError
from gateway.kafka.records import Partition, Publisher, Record, RecordSource

from .book import ConfirmationBook
from .metrics import CallConfirmMetrics
from .settings import CallConfirmSettings

log = logging.getLogger(__name__)

ROLE = "poller"
# Request ids given a number by this process, until the book reads the number back.
_REMEMBER_ISSUED = 10000
# How long an expiry waits for the topic to be read to its end before trying next tick.
READ_TO_NOW_SECONDS = 10.0


class CallDesk(Protocol):
    async def wait_call(self, phone: str) -> CallNumber:
        """The number ``phone`` must call (wait_call.php)."""


class Freshness(Protocol):
    async def read_to_now(self) -> None:
        """Return once what is on the topic now has been read."""


class Issuer:
    """Handles one request record; see the module docstring."""

    def __init__(
        self,
        desk: CallDesk,
        publisher: Publisher,
        known: Callable[[str], bool],
        *,
        waitcall_topic: str,
        dead_letter_topic: str,
        settings: CallConfirmSettings,
        metrics: CallConfirmMetrics,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._desk = desk
        self._publisher = publisher
        self._known = known
        self._waitcall = waitcall_topic
        self._dead_letter = dead_letter_topic
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._issued: OrderedDict[str, None] = OrderedDict()
        self._asking: set[str] = set()

    async def handle(self, record: Record, stop: asyncio.Event) -> bool:
        """True once what the record leads to is on Kafka (or nothing was needed); False
        when ``stop`` came first (the record is then left for the next start)."""
        request = parse_call_confirm(record.value)
        if isinstance(request, InvalidCallConfirm):
            return await self._refuse(record, request, stop)
        request_id = request.request_id
        if self._known(request_id) or request_id in self._issued or request_id in self._asking:
            log.info("request %s already has a number or an outcome", request_id)
            return True
        self._asking.add(request_id)  # a copy of it in the same batch waits for nothing
        try:
            return await self._issue(request, stop)
        finally:
            self._asking.discard(request_id)

    async def _issue(self, request: CallConfirmRequest, stop: asyncio.Event) -> bool:
        event = await self._ask(request, stop)
        if event is None:
            return False
        if not await self._publish(request.phone.encode(), event, stop):
            return False
        if event["kind"] == "number_issued":
            self._remember(request.request_id)
            self._metrics.issued.inc()
        else:
            self._metrics.outcomes(event["kind"]).inc()
        return True

    async def _ask(self, request: CallConfirmRequest, stop: asyncio.Event) -> dict[str, Any] | None:
        """number_issued, or the outcome that ends the request; None when stopped first."""
        give_up = self._monotonic() + self._settings.give_up_after_seconds
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                number = await self._desk.wait_call(request.phone)
            except HttpApiError as exc:
                if not exc.retriable:
                    return outcome_event(self._ended(REJECTED, request, exc))
                wait = max(exc.retry_after_seconds or 0.0, delay)
                if self._monotonic() + wait > give_up:
                    return outcome_event(self._ended(FAILED, request, exc))
                log.warning("wait_call again in %.1f s: %s", wait, exc)
                if not await sleep_unless(stop, wait):
                    return None
                delay = min(delay * 2, self._settings.retry_max_seconds)
                continue
            return number_issued_event(self._issued_number(request, number))

    def _issued_number(self, request: CallConfirmRequest, number: CallNumber) -> NumberIssued:
        now = self._clock()
        return NumberIssued(
            request_id=request.request_id,
            phone=request.phone,
            call_to=number.call_to,
            all_phones=number.all_phones,
            issued_at=now,
            deadline=now + timedelta(seconds=self._settings.deadline_seconds),
            tags=request.tags,
            raw=MappingProxyType({"phone": number.call_to, "all_phones": list(number.all_phones)}),
        )

    def _ended(self, kind: str, request: CallConfirmRequest, exc: HttpApiError) -> Outcome:
        return Outcome(
            kind=kind,
            request_id=request.request_id,
            phone=request.phone,
            decided_at=self._clock(),
            tags=request.tags,
            reason_code=exc.reason,
            reason=str(exc),
            error_code=exc.code if isinstance(exc, ProviderApiError) else None,
        )

    async def _refuse(
        self, record: Record, invalid: InvalidCallConfirm, stop: asyncio.Event
    ) -> bool:
        now = self._clock()
        dead = dead_letter_event(
            role=ROLE,
            origin=Origin("kafka", record.topic, record.partition, record.offset),
            reason_code=invalid.code,
            reason=invalid.message,
            key=record.key,
            value=record.value,
            occurred_at=now,
        )
        if not await self._publish(record.key, dead, stop, topic=self._dead_letter):
            return False
        if invalid.request_id is None:
            return True
        outcome = Outcome(
            kind=REJECTED,
            request_id=invalid.request_id,
            phone=invalid.phone or "",
            decided_at=now,
            reason_code=invalid.code,
            reason=invalid.message,
        )
        key = (invalid.phone or invalid.request_id).encode()
        if not await self._publish(key, outcome_event(outcome), stop):
            return False
        self._metrics.outcomes(REJECTED).inc()
        return True

    async def _publish(
        self, key: bytes | None, event: dict[str, Any], stop: asyncio.Event, *, topic: str = ""
    ) -> bool:
        """Publish until Kafka has it; False when ``stop`` came first."""
        delay = self._settings.retry_initial_seconds
        while True:
            try:
                await self._publisher.publish(topic or self._waitcall, key, dumps(event))
            except KafkaUnavailableError as exc:
                log.warning("call confirmation not published, trying again: %s", exc)
                if not await sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, self._settings.retry_max_seconds)
                continue
            return True

    def _remember(self, request_id: str) -> None:
        self._issued[request_id] = None
        while len(self._issued) > _REMEMBER_ISSUED:
            self._issued.popitem(last=False)


class RequestLane:
    """Fetches requests, handles a batch at once, commits what is done."""

    def __init__(self, source: RecordSource, issuer: Issuer, settings: CallConfirmSettings) -> None:
        self._source = source
        self._issuer = issuer
        self._settings = settings
        self.idle = asyncio.Event()
        self.idle.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; the batch in hand is finished (or left uncommitted) first."""
        while not stop.is_set():
            records = await self._source.fetch(0.5, self._settings.max_in_flight)
            if not records:
                continue
            self.idle.clear()
            try:
                done = await asyncio.gather(*(self._issuer.handle(r, stop) for r in records))
                await self._commit(records, done)
            finally:
                self.idle.set()

    async def _commit(self, records: Sequence[Record], done: Sequence[bool]) -> None:
        offsets = committable(records, done)
        try:
            await self._source.commit(offsets)
        except KafkaUnavailableError as exc:
            # Their outcomes are on Kafka: a redelivery finds them known and does nothing.
            log.warning("commit of call confirmation requests failed: %s", exc)

    async def on_revoked(self, partitions: set[Partition]) -> None:
        """A rebalance waits (a bounded while) for the batch in hand to be committed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), self._settings.give_up_after_seconds)


def committable(records: Sequence[Record], done: Sequence[bool]) -> dict[Partition, int]:
    """Per partition, the offset after the last record of an unbroken run of done ones."""
    found: dict[Partition, int] = {}
    blocked: set[Partition] = set()
    for record, finished in sorted(zip(records, done, strict=True), key=lambda x: x[0].offset):
        partition = record.source
        if partition in blocked:
            continue
        if not finished:
            blocked.add(partition)
            continue
        found[partition] = record.offset + 1
    return found


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


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; False when ``stop`` is or gets set first."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def before_stop(
    stop: asyncio.Event, work: Awaitable[Any], *, within_seconds: float | None = None
) -> bool:
    """Await ``work`` unless ``stop`` (or ``within_seconds``) comes first; True if it did."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {task, stopping}, timeout=within_seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for pending in (task, stopping):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    return task in done
