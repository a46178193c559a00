"""Phone confirmation, step 2: requests fetched, handed to the issuer a batch at a time, and
a record's offset committed only once what it led to is on Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from gateway.errors import KafkaUnavailableError
from gateway.kafka.records import Partition, Record, RecordSource
from gateway.settings.callconfirm import CallConfirmSettings

from .issuer import Issuer

log = logging.getLogger(__name__)


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
