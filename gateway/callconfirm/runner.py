"""The call confirmation's objects wired to Kafka and the HTTP API client, and its run.

Run inside the ``poller`` role (one per credential: wait_call.php's limits are the login's).
Order at start: ``smsc.waitcall.v1`` is read from ``history_seconds`` ago until caught up;
only then are outcomes decided, and requests consumed (a request redelivered after a crash
is then known and not given a second number). Should the topic take longer than
``CATCH_UP_SECONDS`` to read, requests are consumed anyway, with a warning. At shutdown the
batch of requests in hand is finished or left uncommitted, then the consumer and the reader
stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.follow import TopicsReader
from gateway.kafka.records import Partition, Publisher, Record
from gateway.metrics import Metrics
from gateway.settings import Settings

from .book import ConfirmationBook
from .decider import Decider
from .issuer import CallDesk, Issuer
from .lane import RequestLane
from .metrics import CallConfirmMetrics
from .waiting import before_stop

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class CallConfirmParts:
    """What :func:`build_call_confirm` wires, exposed for tests."""

    book: ConfirmationBook
    reader: TopicsReader
    source: KafkaRecordSource
    issuer: Issuer
    lane: RequestLane
    decider: Decider

    def readiness(self) -> tuple[bool, str]:
        if not self.reader.is_caught_up:
            return False, "reading the waitcall topic"
        return True, f"{len(self.book)} confirmations pending"

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; see the module docstring for the order."""
        async with asyncio.TaskGroup() as group:
            reading = group.create_task(self.reader.run(), name="call-confirm-reader")
            group.create_task(
                self.decider.run(stop, self.reader.caught_up()), name="call-confirm-decider"
            )
            await self._consume(stop)
            reading.cancel()

    async def _consume(self, stop: asyncio.Event) -> None:
        reading = self.reader.caught_up()
        caught_up = await before_stop(stop, reading, within_seconds=CATCH_UP_SECONDS)
        if stop.is_set():
            return
        if not caught_up:
            log.warning("waitcall topic not read yet; a redelivered request may get a number again")
        await self.source.start()
        try:
            await self.lane.run(stop)
        finally:
            await self.source.stop()


def build_call_confirm(
    settings: Settings, desk: CallDesk, publisher: Publisher, metrics: Metrics
) -> CallConfirmParts:
    """Every object of the call confirmation, wired; nothing started."""
    config, topics = settings.call_confirm, settings.topics
    own_metrics = CallConfirmMetrics(metrics)
    book = ConfirmationBook(
        grace_seconds=config.grace_seconds, remember_seconds=config.history_seconds
    )
    issuer = Issuer(
        desk,
        publisher,
        book.known,
        waitcall_topic=topics.waitcall,
        dead_letter_topic=topics.dead_letter,
        settings=config,
        metrics=own_metrics,
    )
    lanes: list[RequestLane] = []

    async def on_revoked(partitions: set[Partition]) -> None:
        for lane in lanes:
            await lane.on_revoked(partitions)

    source = KafkaRecordSource(
        settings.kafka,
        metrics,
        topics=[topics.call_confirm],
        group_id=config.group_id,
        on_revoked=on_revoked,
    )
    lanes.append(lane := RequestLane(source, issuer, config))
    wake = asyncio.Event()  # a call made a confirmation due: decide now, not next tick

    def on_record(record: Record) -> None:
        if book.read(record.value):
            wake.set()

    since_ms = int((time.time() - config.history_seconds) * 1000)
    reader = TopicsReader(settings.kafka, [topics.waitcall], on_record, since_ms=since_ms)
    decider = Decider(
        book,
        publisher,
        reader,
        topic=topics.waitcall,
        settings=config,
        metrics=own_metrics,
        wake=wake,
    )
    return CallConfirmParts(book, reader, source, issuer, lane, decider)
