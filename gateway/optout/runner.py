"""The opt-out's Kafka side, run by the ``poller`` role when keywords are configured.

1. The ledger is filled from ``smsc.opt-out.v1`` from ``remember_seconds`` ago (every
   process reads it all, no group) and that topic is followed from then on, so opt-outs
   published by another instance are known too.
2. Once that history is read, ``smsc.incoming.v1`` is consumed in the consumer group
   ``group_id`` (instances share the partitions); each batch is handled record by record
   (:class:`~.service.OptOutService`) and the offsets committed once every record of it is
   done, that is once its outcome is on Kafka. A stop in the middle commits what is done.

Every wait is bounded: a fetch waits at most a second, a retry at most ``retry_max_seconds``,
and both end at once when the role stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from gateway.account.calls import ScriptCaller, ScriptClient
from gateway.account.contacts import ContactsApi
from gateway.errors import KafkaUnavailableError
from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.follow import TopicsReader
from gateway.kafka.records import Partition, Publisher, Record, RecordSource
from gateway.metrics import Metrics
from gateway.settings import Settings

from .ledger import OptOutLedger
from .metrics import OptOutMetrics
from .service import OptOutService, Topics

log = logging.getLogger(__name__)

FETCH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class OptOutRunner:
    """The opt-out's parts, wired; :meth:`run` until the role stops."""

    ledger: OptOutLedger
    history: TopicsReader
    service: OptOutService
    source: KafkaRecordSource
    max_records: int

    def readiness(self) -> tuple[bool, str]:
        """Ready once the opt-outs of the last ``remember_seconds`` are read."""
        if not self.history.is_caught_up:
            return False, "reading the opt-outs"
        return True, f"{len(self.ledger)} opt-outs remembered"

    async def run(self, stop: asyncio.Event) -> None:
        """Act on opt-out keywords until ``stop`` (see the module docstring)."""
        async with asyncio.TaskGroup() as tasks:
            reading = tasks.create_task(self.history.run(), name="optout-history")
            try:
                if await _first(self.history.caught_up(), stop):
                    log.info("opt-out: %d handled SMS remembered, consuming", len(self.ledger))
                    await consume(self.source, self.service, stop, self.max_records)
            finally:
                reading.cancel()


def build_optout(
    settings: Settings, client: ScriptClient, publisher: Publisher, metrics: Metrics
) -> OptOutRunner | None:
    """The opt-out's parts when keywords are configured; nothing started."""
    optout = settings.optout
    if not optout.enabled:
        return None
    ledger = OptOutLedger(optout.max_remembered)
    since_ms = int((time.time() - optout.remember_seconds) * 1000)
    history = TopicsReader(
        settings.kafka, [settings.topics.opt_out], ledger.on_record, since_ms=since_ms
    )
    contacts = ContactsApi(ScriptCaller(client, settings.http_api.limit_window_seconds))
    topics = Topics(settings.topics.opt_out, settings.topics.dead_letter)
    service = OptOutService(
        optout, ledger, contacts, publisher, topics=topics, metrics=OptOutMetrics.of(metrics)
    )
    source = KafkaRecordSource(
        settings.kafka,
        metrics,
        topics=[settings.topics.incoming],
        group_id=optout.group_id,
        on_revoked=_committed_already,
    )
    return OptOutRunner(ledger, history, service, source, optout.fetch_max_records)


async def consume(
    source: KafkaRecordSource, service: OptOutService, stop: asyncio.Event, max_records: int
) -> None:
    """Fetch, handle and commit until ``stop``."""
    await source.start()
    try:
        while not stop.is_set():
            records = await source.fetch(FETCH_SECONDS, max_records)
            await _handle_batch(source, service, records, stop)
    finally:
        await source.stop()


async def _handle_batch(
    source: RecordSource, service: OptOutService, records: list[Record], stop: asyncio.Event
) -> None:
    done: dict[Partition, int] = {}
    for record in records:
        if not await service.handle(record, stop):
            break  # stopping: this record and the rest come again on the next start
        done[record.source] = record.offset + 1
    try:
        await source.commit(done)
    except KafkaUnavailableError as exc:
        # The next commit of the same partitions covers these offsets too.
        log.warning("opt-out offsets not committed yet: %s", exc)


async def _first(ready: Awaitable[None], stop: asyncio.Event) -> bool:
    """Wait for ``ready`` or ``stop``; True when ``ready`` came first."""
    waiting = asyncio.ensure_future(ready)
    stopping = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return waiting in done


async def _committed_already(_: set[Partition]) -> None:
    # Every batch is committed before the next fetch, and rebalances happen inside a fetch:
    # nothing is left to commit when partitions go.
    return None
