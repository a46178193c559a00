"""Following whole topics without a consumer group, records and all.

:class:`TopicsReader` reads every partition of its topics from a point in time on and keeps
following them, handing each record to a sink. Every process reads everything (no group, no
commits): it is for state rebuilt from the topics at start, such as the poller's pending set.

It subscribes rather than assigning: without a group aiokafka then assigns every partition of
the topics as their metadata arrives. (A fresh consumer knows no topic's partitions, and
``topics()`` does not teach it: ``partitions_for_topic`` stays empty until a metadata refresh
that covers the topic, five minutes later by default.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.errors import KafkaUnavailableError
from gateway.settings import KafkaSettings

from .client import client_options
from .errors import read_error
from .records import Partition, Record, fetched_record

log = logging.getLogger(__name__)

RecordHandler = Callable[[Record], None]
# What a reader that needs only each record's key and Kafka timestamp (ms) hands on: no
# Record is made per record (the sender follows every result it publishes this way).
KeyHandler = Callable[[bytes | None, int], None]


class TopicsReader:
    """Reads ``topics`` from ``since_ms`` (Kafka timestamps) on, until cancelled.

    Waits for topics that do not exist yet. ``caught_up()`` returns once everything that was
    in the topics when reading started has been handed to ``sink`` (or, given instead,
    ``keys``: each record's key and timestamp).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        sink: RecordHandler | None = None,
        *,
        keys: KeyHandler | None = None,
        since_ms: int,
        max_records: int = 1000,
    ) -> None:
        if (sink is None) == (keys is None):
            raise ValueError("a TopicsReader hands records to one of sink and keys")
        self._topics = list(topics)
        self._sink = sink
        self._keys = keys
        self._since_ms = since_ms
        self._max_records = max_records
        self._consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self._ends: dict[TopicPartition, int] = {}
        self._caught_up = asyncio.Event()

    async def caught_up(self) -> None:
        await self._caught_up.wait()

    @property
    def is_caught_up(self) -> bool:
        return self._caught_up.is_set()

    async def read_to_now(self) -> None:
        """Return once every record in the topics when called has been handed to ``sink``
        (a decision that must not miss a record already on Kafka waits for this)."""
        await self._caught_up.wait()
        try:
            ends = await self._consumer.end_offsets(list(self._ends))
            while True:
                # The sink is called right after each fetch, with no await in between, so
                # a position past a record means the sink has it.
                positions = [await self._consumer.position(tp) for tp in ends]
                if all(p >= end for p, end in zip(positions, ends.values(), strict=True)):
                    return
                await asyncio.sleep(0.05)
        except KafkaError as exc:
            raise KafkaUnavailableError(f"cannot read {self._topics} to the end: {exc}") from exc

    async def run(self) -> None:
        """Follow the topics until cancelled."""
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaUnavailableError(f"cannot read {self._topics}: {exc}") from exc
        try:
            await self._assign()
            while True:
                await self._read_batch()
                await self._check_caught_up()
        finally:
            await self._consumer.stop()

    async def _read_batch(self) -> None:
        try:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
        except KafkaError as exc:
            raise read_error(self._topics, exc) from exc
        sink, keys = self._sink, self._keys
        for tp, messages in batches.items():
            if keys is not None:
                for m in messages:
                    keys(m.key, m.timestamp)
            elif sink is not None:
                source = Partition(tp.topic, tp.partition)
                for m in messages:
                    sink(
                        fetched_record(source, m.offset, m.key, m.value, m.timestamp, replay=False)
                    )

    async def _assign(self) -> None:
        partitions = await self._partitions()
        starts = await self._consumer.offsets_for_times(dict.fromkeys(partitions, self._since_ms))
        self._ends = await self._consumer.end_offsets(partitions)
        for tp in partitions:
            found = starts.get(tp)
            self._consumer.seek(tp, found.offset if found is not None else self._ends[tp])
        log.info("reading %s from %d", self._topics, self._since_ms)

    async def _partitions(self) -> list[TopicPartition]:
        # Without a group, a subscription is assigned every partition of its topics as their
        # metadata arrives (and partitions added later, read from their start).
        self._consumer.subscribe(self._topics)
        checks = 0
        while True:
            assigned = self._consumer.assignment()
            missing = set(self._topics) - {tp.topic for tp in assigned}
            if not missing:
                return sorted(assigned)
            if checks % 300 == 0:  # every 30 s
                log.info("waiting for topics %s", sorted(missing))
            checks += 1
            await asyncio.sleep(0.1)

    async def _check_caught_up(self) -> None:
        if self._caught_up.is_set():
            return
        for tp, end in self._ends.items():
            if await self._consumer.position(tp) < end:
                return
        self._caught_up.set()
