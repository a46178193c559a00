"""Stage 1 as a plain consumer and producer: re-key both inputs by phone onto the route topic.

The route stage keeps no state, so it needs nothing faust offers (tables, changelogs,
partition ownership of state): it runs beside the faust app as its own consumer group
(``<app_id>-route``).

It fetches the inputs in batches. Each record becomes route documents (or a dead letter,
:mod:`gateway.correlator.route`), and each document belongs to the route partition of its
phone: the partition Kafka's default partitioner gives the phone as a key (murmur2, as the
Java client), so a phone's documents land where they always did. The documents of one fetch
that go to one partition travel as **one** route record (a batch, in order, up to
``MAX_BATCH_ITEMS`` documents or ``MAX_BATCH_BYTES``): stage 2 is a faust agent, and faust's
cost per record (its consumer, conductor and stream iteration create and cancel several
asyncio tasks per record) then comes once per batch instead of once per report.

Nothing is committed before Kafka acknowledged what a fetch produced: a fetch's records are
completed once all its route records and dead letters are acknowledged, and in order
(:mod:`gateway.correlator.acks`); the offsets of completed records are committed every
``commit_interval``, on a rebalance for the partitions that go, and at stop. After a crash
the records since the last commit are routed again, which stage 2 handles as replays
(docs/correlator.md). A failed produce stops the stage (:meth:`Router.run` raises) without
committing past it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka.partitioner import murmur2

from gateway.errors import KafkaUnavailableError
from gateway.events.dead_letter import Origin
from gateway.events.envelope import dumps
from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.records import Partition, Record
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings

from .acks import InOrderAcks
from .metrics import CorrelatorMetrics, Tally
from .outputs import Sends
from .records import Channel, Outbound, Step, route_batch
from .route import route_report, route_send_result

log = logging.getLogger(__name__)

FETCH_SECONDS = 0.2
FETCH_RECORDS = 1000
# The broker holds a fetch until this much has come or FETCH_WAIT_SECONDS passed: a request
# per few records costs the worker more CPU (a produce and a fetch round trip each) than the
# records themselves at a few hundred reports per second, and the join pays faust's cost per
# route record, so fewer, larger route records leave a worker short of CPU (a shared machine,
# a CPU limit) room to keep up; 100 ms is a tenth of the status latency's budget
# (docs/benchmarks.md).
FETCH_MIN_BYTES = 256 * 1024
FETCH_WAIT_SECONDS = 0.1
YIELD_EVERY = 100  # records routed between turns of the event loop the join agent shares
# Well under the broker's default max.message.bytes (1 MB); a route document is ~1-2 KB, and
# the route stage dead-letters reports over MAX_REPORT_BYTES.
MAX_BATCH_ITEMS = 200
MAX_BATCH_BYTES = 512 * 1024
# Records taken and not yet acknowledged before the loop waits for Kafka: bounds the memory a
# slow broker can make the stage hold.
MAX_IN_FLIGHT = 20_000
DRAIN_SECONDS = 30.0

Fetch = Sequence[Record]


def route_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, positive)."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


class Router:
    """Re-keys send results and delivery reports by phone; one consumer group per app."""

    def __init__(
        self,
        kafka: KafkaSettings,
        metrics: Metrics,
        correlator_metrics: CorrelatorMetrics,
        sends: Sends,
        *,
        group_id: str,
        partitions: int,
        inputs: tuple[str, str],
        topics: Mapping[Channel, str],
        commit_interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kafka, self._kafka_metrics, self._inputs = kafka, metrics, list(inputs)
        self._group = group_id
        self._results, _ = inputs
        self._route, self._dead_letter = topics[Channel.ROUTE], topics[Channel.DEAD_LETTER]
        self._metrics = correlator_metrics
        self._clock = clock
        self._commit_interval = commit_interval_seconds
        self._sends = sends
        self._partitions = partitions  # of the route topic: checked at start (topology)
        self._source: KafkaRecordSource | None = None  # built by run(): one consumer a run
        self._acks: InOrderAcks[Fetch] = InOrderAcks(self._completed)
        self._next: dict[Partition, int] = {}
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Route until ``stop`` is set; raises when a route record cannot be stored. The
        producer behind ``sends`` must be running until this returns."""
        source = self._source = KafkaRecordSource(
            self._kafka,
            self._kafka_metrics,
            topics=self._inputs,
            group_id=self._group,
            on_revoked=self._on_revoked,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_seconds=FETCH_WAIT_SECONDS,
        )
        await source.start()
        try:
            self.started.set()
            await self._loop(source, stop)
        finally:
            await self._finish(source)
            await source.stop()

    async def _loop(self, source: KafkaRecordSource, stop: asyncio.Event) -> None:
        commit_at = time.monotonic() + self._commit_interval
        while not stop.is_set():
            fetch = await source.fetch(FETCH_SECONDS, FETCH_RECORDS)
            if fetch:
                await self._route_fetch(fetch)
            if len(self._acks) > MAX_IN_FLIGHT:
                await self._acks.drained(DRAIN_SECONDS)
            if self._acks.failure is not None:
                raise self._acks.failure
            if time.monotonic() >= commit_at:
                await self._commit(source, self._next)
                commit_at = time.monotonic() + self._commit_interval

    async def _route_fetch(self, fetch: Fetch) -> None:
        batches: dict[int, list[dict[str, Any]]] = {}
        letters: list[Outbound] = []
        tally = Tally()
        for n, record in enumerate(fetch, start=1):
            if not n % YIELD_EVERY:
                await asyncio.sleep(0)
            step = self._step(record)
            tally.add(step)
            tally.routed[record.topic] += 1
            for out in step.outbound:
                if out.channel is Channel.ROUTE:
                    partition = route_partition(out.key or b"", self._partitions)
                    batches.setdefault(partition, []).append(out.document)
                else:
                    letters.append(out)
        records = [(p, value) for p, docs in batches.items() for value in batch_records(docs)]
        settle = self._acks.take(fetch, len(records) + len(letters)).settle
        send = self._sends.send
        for partition, value in records:
            await send(self._route, None, value, settle, partition=partition)
        for letter in letters:
            await send(self._dead_letter, letter.key, dumps(letter.document), settle)
        self._metrics.observe(tally)

    def _step(self, record: Record) -> Step:
        """The task root of one record: a failure of our own dead-letters it."""
        origin = Origin("kafka", record.topic, record.partition, record.offset)
        now = self._clock()
        try:
            if record.topic == self._results:
                return route_send_result(origin, record.key, record.value, now)
            return route_report(origin, record.key, record.value, now)
        except Exception as exc:
            log.exception("routing failed on %s:%s", record.topic, record.partition)
            step = Step()
            step.dead_letter(
                origin, record.key, record.value, code="internal_error", reason=repr(exc), at=now
            )
            return step

    def _completed(self, fetch: Fetch) -> None:
        for record in fetch:
            self._next[record.source] = record.offset + 1

    async def _commit(self, source: KafkaRecordSource, offsets: Mapping[Partition, int]) -> None:
        if self._acks.failure is not None or not offsets:
            return  # nothing is committed past a failed output; run() raises it
        done = dict(offsets)
        try:
            await source.commit(done)
        except KafkaUnavailableError as exc:
            # A rebalance under way or Kafka away: the records are routed again after it.
            log.warning("route offsets not committed: %s", exc)
            return
        for partition, offset in done.items():
            if self._next.get(partition) == offset:
                del self._next[partition]

    async def _on_revoked(self, revoked: set[Partition]) -> None:
        await self._acks.drained(DRAIN_SECONDS)
        assert self._source is not None  # the consumer calls this while it runs
        await self._commit(self._source, {p: o for p, o in self._next.items() if p in revoked})
        for partition in revoked:
            self._next.pop(partition, None)

    async def _finish(self, source: KafkaRecordSource) -> None:
        """At stop: wait for what was taken, then commit it (unless an output failed)."""
        drained = await self._acks.drained(DRAIN_SECONDS)
        await self._commit(source, self._next)
        if not drained and self._acks.failure is None:
            log.warning("route stage stopped with %d fetches unacknowledged", len(self._acks))


def batch_records(documents: list[dict[str, Any]]) -> list[bytes]:
    """The documents as route records of at most MAX_BATCH_ITEMS documents and (unless one
    document alone is larger) MAX_BATCH_BYTES, in order."""
    if len(documents) > MAX_BATCH_ITEMS:
        return [
            value
            for start in range(0, len(documents), MAX_BATCH_ITEMS)
            for value in batch_records(documents[start : start + MAX_BATCH_ITEMS])
        ]
    value = route_batch(documents)
    if len(value) <= MAX_BATCH_BYTES or len(documents) == 1:
        return [value]
    half = len(documents) // 2
    return batch_records(documents[:half]) + batch_records(documents[half:])
