"""Consumer lag, as each consuming process sees it: end offsets against committed offsets.

For every partition a process consumes, the lag is the number of records past the group's
committed offset (the high watermark minus the committed offset; from the start of the log
while the group has committed nothing). It is what an on-call engineer asks first ("how far
behind is sending?") and the gateway knows it without an exporter: :class:`LagReporter` asks
the consumer every few seconds and sets ``smsc_kafka_consumer_lag{group, topic, partition}``.

The end offsets are asked of the broker (ListOffsets), not taken from the last fetch: a
consumer that stopped fetching because it is busy would otherwise report the lag it had when
it stopped, which is when lag matters most. A partition taken away by a rebalance loses its
series here, so summing over processes never counts a partition twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from .records import Partition

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


class ConsumerOffsets(Protocol):
    """What a consumer knows about the partitions assigned to it."""

    def assigned(self) -> set[Partition]:
        """The partitions this process consumes now."""

    async def committed(self, partitions: set[Partition]) -> dict[Partition, int | None]:
        """The group's committed offset (the next to read) of each, None if never committed."""

    async def ends(self, partitions: set[Partition]) -> dict[Partition, int]:
        """The high watermark (the offset the next record will get) of each."""

    async def starts(self, partitions: set[Partition]) -> dict[Partition, int]:
        """The first offset still in the log of each."""


def lag_of(committed: int | None, start: int, end: int) -> int:
    """Records not yet consumed: from the committed offset, or the log's start without one."""
    return max(0, end - (start if committed is None else max(committed, start)))


class LagReporter:
    """Keeps the lag gauge of one consumer group in this process up to date."""

    def __init__(
        self,
        gauge: Gauge,
        group: str,
        offsets: ConsumerOffsets,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._gauge = gauge
        self._group = group
        self._offsets = offsets
        self._refresh_seconds = refresh_seconds
        self._reported: set[Partition] = set()

    async def run(self) -> None:
        """Refresh until cancelled; a failed refresh is tried again at the next one."""
        while True:
            try:
                # end_offsets can wait for a partition's leader without a bound of its own.
                await asyncio.wait_for(self.refresh(), self._refresh_seconds * 2)
            except (KafkaError, TimeoutError) as exc:
                log.debug("%s: consumer lag not refreshed: %r", self._group, exc)
            await asyncio.sleep(self._refresh_seconds)

    async def refresh(self) -> None:
        partitions = self._offsets.assigned()
        for gone in self._reported - partitions:
            self._gauge.remove(self._group, gone.topic, str(gone.partition))
        self._reported &= partitions
        if not partitions:
            return
        ends = await self._offsets.ends(partitions)
        committed = await self._offsets.committed(partitions)
        never = {p for p in partitions if committed.get(p) is None}
        starts = await self._offsets.starts(never) if never else {}
        for partition in partitions & ends.keys():
            lag = lag_of(committed.get(partition), starts.get(partition, 0), ends[partition])
            self._gauge.labels(self._group, partition.topic, str(partition.partition)).set(lag)
            self._reported.add(partition)

    def clear(self) -> None:
        """Drop every series of this group: the process no longer consumes."""
        for partition in self._reported:
            self._gauge.remove(self._group, partition.topic, str(partition.partition))
        self._reported.clear()


class AiokafkaOffsets:
    """:class:`ConsumerOffsets` of an aiokafka consumer in a group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    def assigned(self) -> set[Partition]:
        return {Partition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def committed(self, partitions: set[Partition]) -> dict[Partition, int | None]:
        # One OffsetFetch per partition: a handful of partitions every few seconds.
        return {p: await self._consumer.committed(_tp(p)) for p in partitions}

    async def ends(self, partitions: set[Partition]) -> dict[Partition, int]:
        found = await self._consumer.end_offsets([_tp(p) for p in partitions])
        return {Partition(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def starts(self, partitions: set[Partition]) -> dict[Partition, int]:
        found = await self._consumer.beginning_offsets([_tp(p) for p in partitions])
        return {Partition(tp.topic, tp.partition): offset for tp, offset in found.items()}


def _tp(partition: Partition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)
