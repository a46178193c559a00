"""The correlator's floor: the same two-stage topology as plain aiokafka loops, no faust.

What any implementation of the correlator has to do per report: stage 1 re-keys the inputs
by phone (this is the correlator's own route stage, :class:`gateway.correlator.router.Router`,
which is plain aiokafka already); stage 2 reads the route topic with a plain consumer,
applies each record to the same :class:`~gateway.correlator.join.Correlator` over dict tables
holding the encoded entries, produces one changelog record per table change (to the
changelog partition numbered like the route partition, as faust does) and the outputs, and
commits offsets once Kafka acknowledged everything a record produced. Everything goes through
one aiokafka producer with the settings of faust's (acks=all, 20 ms linger, 256 KB batches),
as in the faust worker. What it leaves out is what faust adds: its consumer, stream and event
machinery, its tables (RocksDB), recovery and partition ownership (this loop keeps nothing
across restarts: it is a yardstick, not a product).

Run by ``bench/correlator.py`` as a process of its own, configured like the correlator role
(``GATEWAY_*`` variables); SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.correlator.acks import InOrderAcks, Slot
from gateway.correlator.faustapp import PRODUCER_LINGER_SECONDS, PRODUCER_MAX_BATCH_BYTES
from gateway.correlator.join import Correlator, JoinSettings
from gateway.correlator.metrics import CorrelatorMetrics
from gateway.correlator.model import decode_entry, decode_held, encode_entry, encode_held
from gateway.correlator.outputs import Sends
from gateway.correlator.records import Channel, InvalidInputError, Step, parse_route_records
from gateway.correlator.router import FETCH_MIN_BYTES, FETCH_WAIT_SECONDS, Router
from gateway.correlator.topology import prepare_topics
from gateway.errors import KafkaUnavailableError
from gateway.events.dead_letter import Origin
from gateway.events.envelope import dumps
from gateway.ingress.loop import loop_factory
from gateway.kafka.client import KafkaRecordSource, client_options
from gateway.kafka.records import Partition, Record
from gateway.logsetup import configure_logging
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings

V = TypeVar("V")
Change = tuple[str, bytes, bytes | None]  # changelog topic, key, value (None: deleted)


class ChangelogDict(Generic[V]):
    """A table as a dict of encoded values that notes one changelog record per change."""

    def __init__(
        self, topic: str, encode: Callable[[V], bytes], decode: Callable[[bytes], V]
    ) -> None:
        self._topic = topic
        self._encode = encode
        self._decode = decode
        self._data: dict[str, bytes] = {}
        self.changes: list[Change] = []

    def get(self, key: str) -> V | None:
        raw = self._data.get(key)
        return None if raw is None else self._decode(raw)

    def put(self, key: str, value: V) -> None:
        raw = self._data[key] = self._encode(value)
        self.changes.append((self._topic, key.encode(), raw))

    def delete(self, key: str) -> None:
        if self._data.pop(key, None) is not None:
            self.changes.append((self._topic, key.encode(), None))


class FloorJoin:
    """Stage 2 as a plain loop: consume, join, changelog and outputs, commit once acked."""

    def __init__(self, settings: Settings, metrics: Metrics, producer: AIOKafkaProducer) -> None:
        c, app = settings.correlator, settings.correlator.app_id
        self._parts = ChangelogDict(f"{app}-parts-changelog", encode_entry, decode_entry)
        self._held = ChangelogDict(f"{app}-held-changelog", encode_held, decode_held)
        join = JoinSettings(c.hold_seconds, c.entry_ttl_seconds, c.done_ttl_seconds)
        self._join = Correlator(self._parts, self._held, join, started_at=time.time())
        # The route stage's fetch settings: what a plain loop would use to batch as well.
        self._source = KafkaRecordSource(
            settings.kafka,
            metrics,
            topics=[c.route_topic],
            group_id=app,
            on_revoked=self._revoked,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_seconds=FETCH_WAIT_SECONDS,
        )
        self._producer = producer
        self._topics = {
            Channel.STATUS: settings.topics.status,
            Channel.DEAD_LETTER: settings.topics.dead_letter,
        }
        self._acks: InOrderAcks[Record] = InOrderAcks(self._completed)
        self._next: dict[Partition, int] = {}
        self._interval = c.commit_interval_seconds

    async def run(self, stop: asyncio.Event) -> None:
        await self._source.start()
        try:
            commit_at = time.monotonic() + self._interval
            while not stop.is_set():
                for record in await self._source.fetch(0.2, 2000):
                    await self._handle(record)
                if self._acks.failure is not None:
                    raise self._acks.failure
                if time.monotonic() >= commit_at:
                    await self._source.commit(self._next)
                    commit_at = time.monotonic() + self._interval
        finally:
            await self._source.stop()

    async def _handle(self, record: Record) -> None:
        step = self._step(record)
        changes = self._parts.changes + self._held.changes
        self._parts.changes.clear()
        self._held.changes.clear()
        slot = self._acks.take(record, len(step.outbound) + len(changes))
        for topic, key, value in changes:
            sent = await self._producer.send(topic, value, key=key, partition=record.partition)
            sent.add_done_callback(functools.partial(_settle, slot))
        for out in step.outbound:
            topic = self._topics[out.channel]
            sent = await self._producer.send(topic, dumps(out.document), key=out.key)
            sent.add_done_callback(functools.partial(_settle, slot))

    def _step(self, record: Record) -> Step:
        now, step = time.time(), Step()
        try:
            items = parse_route_records(record.value)
        except InvalidInputError as exc:
            items = [exc]
        for item in items:
            if isinstance(item, InvalidInputError):
                origin = Origin("kafka", record.topic, record.partition, record.offset)
                step.dead_letter(
                    origin, record.key, record.value, code=item.code, reason=str(item), at=now
                )
            else:
                step.extend(self._join.handle(item, record.partition, now))
        return step

    def _completed(self, record: Record) -> None:
        self._next[record.source] = record.offset + 1

    async def _revoked(self, revoked: set[Partition]) -> None:
        await self._acks.drained(30.0)
        await self._source.commit({p: o for p, o in self._next.items() if p in revoked})


def _settle(slot: Slot[Record], sent: asyncio.Future[Any]) -> None:
    failed = sent.cancelled() or sent.exception() is not None
    slot.settle(KafkaUnavailableError("changelog record not stored") if failed else None)


class PlainProducer:
    """An aiokafka producer with the ``send`` of faust's, for the route stage's Sends."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(  # noqa: PLR0917 - faust's positional signature
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> Any:
        return await self._producer.send(topic, value, key=key, partition=partition)


async def run_floor(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    metrics = Metrics()
    c, topics = settings.correlator, settings.topics
    changelogs = [f"{c.app_id}-parts-changelog", f"{c.app_id}-held-changelog"]
    inputs = (topics.send_results, topics.dlr)
    await prepare_topics(settings.kafka, c, changelogs, list(inputs), stop)
    producer = AIOKafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        linger_ms=int(PRODUCER_LINGER_SECONDS * 1000),
        max_batch_size=PRODUCER_MAX_BATCH_BYTES,
    )
    await producer.start()
    router = Router(
        settings.kafka,
        metrics,
        CorrelatorMetrics(metrics),
        Sends(PlainProducer(producer)),
        group_id=f"{c.app_id}-route",
        partitions=c.partitions,
        inputs=inputs,
        topics={Channel.ROUTE: c.route_topic, Channel.DEAD_LETTER: topics.dead_letter},
        commit_interval_seconds=c.commit_interval_seconds,
    )
    join = FloorJoin(settings, metrics, producer)
    try:
        await asyncio.gather(router.run(stop), join.run(stop))
    finally:
        await producer.stop()


def main() -> None:
    settings = load_settings(os.environ, roles=frozenset({"correlator"}))
    configure_logging(settings.log.level)
    with asyncio.Runner(loop_factory=loop_factory(settings.correlator.event_loop)) as runner:
        runner.run(run_floor(settings))


if __name__ == "__main__":
    main()
