"""The reassembler: parts of concatenated incoming SMS from Kafka, whole messages back to Kafka.

It reads the parts topic in its consumer group (``GATEWAY_REASSEMBLY_GROUP_ID``), feeds each
part to :class:`~gateway.inbound.reassembly.Reassembly`, publishes every finished message to
``smsc.incoming.v1`` and commits, after those publishes were acknowledged, only up to
:meth:`~gateway.inbound.reassembly.Reassembly.safe_offset`. The pending state lives in the
topic: a restarted process, or the new owner of a partition after a rebalance, rebuilds it
by reading again from the committed offset.

Timeouts run on each partition's event time (the parts' received times); the wall clock
moves a partition's clock only once that partition has been read to its end, so catching up
after downtime does not time out messages whose parts are still to be read.

A message Kafka does not take is retried with backoff and never dropped: nothing after it is
committed until it is acknowledged. A record that is not a part goes to the dead-letter topic.
At shutdown the final commit and closing the consumer give up at the role's close deadline
(:mod:`gateway.shutdown`): the next process reads again from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import KafkaRecordRefusedError, KafkaUnavailableError
from gateway.events.dead_letter import Origin, dead_letter_event, dead_letter_key
from gateway.events.delivery import incoming_event
from gateway.events.envelope import dumps, utc_now
from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.records import Partition, Publisher, Record
from gateway.metrics import Children, Metrics
from gateway.settings import Settings
from gateway.shutdown import Shutdown

from .parts import PartRecordError, read_part
from .reassembly import Assembled, Reassembly, incoming_message

log = logging.getLogger(__name__)

ROLE = "reassembler"
_FETCH_TIMEOUT_SECONDS = 0.5
# How often the wall clock is offered to the partitions read to their end.
_TICK_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A record to publish before the next commit."""

    topic: str
    key: bytes | None
    value: bytes
    # The reassembly_messages outcome it counts as; None for a dead letter.
    outcome: str | None


class Reassembler:
    """Consumes the parts topic and publishes whole (or timed-out partial) messages."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime] = utc_now,
        shutdown: Shutdown | None = None,
    ) -> None:
        self._settings = settings.reassembly
        self._shutdown = shutdown or Shutdown(0.0)
        self._topics = settings.topics
        self._publisher = publisher
        self._clock = clock
        self._parts = Children(metrics.reassembly_parts)
        self._messages = Children(metrics.reassembly_messages)
        self._pending_gauge = metrics.reassembly_pending
        self._dead_letters = Children(metrics.dead_letters)
        self._state: Reassembly[Partition] = Reassembly(self._settings.timeout_seconds)
        # Next offset to feed, and last offset committed, per partition owned.
        self._consumed: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}
        self._source = KafkaRecordSource(
            settings.kafka,
            metrics,
            topics=[self._topics.incoming_parts],
            group_id=self._settings.group_id,
            on_revoked=self._on_revoked,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Reassemble until ``stop`` is set; then commit what is safe and close the consumer."""
        try:
            await self._source.start()
            log.info(
                "reassembling %s in group %s", self._topics.incoming_parts, self._settings.group_id
            )
            if await self._loop(stop):
                await self._shutdown.step("reassembler: final offset commit", self._commit())
        except Exception:
            # Task root: say so at once; the parts stay on Kafka for the next start.
            log.exception("reassembly stopped by an error")
            raise
        finally:
            await self._shutdown.step("closing the parts consumer", self._source.stop())
            log.info("reassembler stopped")

    async def _loop(self, stop: asyncio.Event) -> bool:
        """False when stopped while a finished message was still not on Kafka."""
        next_commit = next_tick = time.monotonic()
        while not stop.is_set():
            records = await self._source.fetch(
                _FETCH_TIMEOUT_SECONDS, self._settings.fetch_max_records
            )
            outgoing = self._feed(records)
            if time.monotonic() >= next_tick:
                outgoing += await self._tick()
                next_tick = time.monotonic() + _TICK_INTERVAL_SECONDS
            if not await self._publish(outgoing, stop):
                return False
            self._pending_gauge.set(self._state.pending())
            if time.monotonic() >= next_commit:
                await self._commit()
                next_commit = time.monotonic() + self._settings.commit_interval_seconds
        return True

    def _feed(self, records: list[Record]) -> list[_Outgoing]:
        outgoing: list[_Outgoing] = []
        for record in records:
            partition = record.source
            self._consumed[partition] = record.offset + 1
            try:
                part = read_part(record.value)
            except PartRecordError as exc:
                self._parts("unreadable").inc()
                outgoing.append(self._dead_letter(record, str(exc)))
                continue
            added = self._state.add(partition, record.offset, part)
            self._parts("duplicate" if added.duplicate else "added").inc()
            outgoing += [self._message(m) for m in added.finished]
        return outgoing

    async def _tick(self) -> list[_Outgoing]:
        now = self._clock()
        caught_up = await self._source.caught_up()
        return [
            self._message(message)
            for partition in caught_up
            for message in self._state.tick(partition, now)
        ]

    def _message(self, message: Assembled) -> _Outgoing:
        event = incoming_event(incoming_message(message))
        key = message.parts[0].phone.encode()
        return _Outgoing(self._topics.incoming, key, dumps(event), message.outcome.value)

    def _dead_letter(self, record: Record, reason: str) -> _Outgoing:
        origin = Origin("kafka", record.topic, record.partition, record.offset)
        event = dead_letter_event(
            role=ROLE,
            origin=origin,
            reason_code="invalid_part_record",
            reason=reason,
            key=record.key,
            value=record.value,
            occurred_at=self._clock(),
        )
        key = dead_letter_key(record.key)
        return _Outgoing(self._topics.dead_letter, key, dumps(event), None)

    async def _publish(self, outgoing: list[_Outgoing], stop: asyncio.Event) -> bool:
        """Publish everything, retrying what Kafka refuses; False if stopped meanwhile."""
        delay = self._settings.retry_initial_seconds
        while outgoing:
            results = await asyncio.gather(
                *(self._publisher.publish(o.topic, o.key, o.value) for o in outgoing),
                return_exceptions=True,
            )
            failed: list[_Outgoing] = []
            for item, result in zip(outgoing, results, strict=True):
                if isinstance(result, KafkaUnavailableError):
                    failed.append(item)
                elif isinstance(result, KafkaRecordRefusedError):
                    # Never stored, whatever is tried: left out so it holds nothing up. A
                    # topic refused as a whole (any other KafkaRefusedError) stops the role.
                    log.error("%s refuses a record for good, left out: %s", item.topic, result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    self._published(item)
            if failed:
                log.warning("%d reassembled records not on Kafka, retrying", len(failed))
                if await _stopped_within(stop, delay):
                    return False
                delay = min(delay * 2, self._settings.retry_max_seconds)
            outgoing = failed
        return True

    def _published(self, item: _Outgoing) -> None:
        if item.outcome is None:
            self._dead_letters("invalid_part_record").inc()
        else:
            self._messages(item.outcome).inc()

    async def _commit(self) -> None:
        offsets = {
            partition: self._state.safe_offset(partition, consumed)
            for partition, consumed in self._consumed.items()
        }
        moved = {p: o for p, o in offsets.items() if self._committed.get(p) != o}
        if not moved:
            return
        try:
            await self._source.commit(moved)
        except KafkaUnavailableError as exc:
            log.warning("reassembly offsets not committed, retrying later: %s", exc)
            return
        for partition, offset in moved.items():
            self._committed[partition] = offset
            self._state.committed(partition, offset)

    async def _on_revoked(self, partitions: set[Partition]) -> None:
        # The next owner reads these partitions again from the last commit and rebuilds
        # their pending messages; keeping them here would publish them twice.
        for partition in partitions:
            self._state.drop(partition)
            self._consumed.pop(partition, None)
            self._committed.pop(partition, None)
        self._pending_gauge.set(self._state.pending())


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
