"""The correlator's consumer lag, from faust's consumer: the same gauge as every other role.

faust owns the consumer (in a thread of its own), so the offsets are asked through its
public consumer API (assignment, high watermarks, earliest offsets) and the group's
committed offsets through an admin client, never from the consumer's internals. Only the
topics the agents read are reported (the route topic: the inputs are read by the route stage,
whose consumer reports its own group's lag); the changelogs are read to rebuild tables, not
consumed by the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP

from gateway.kafka.client import client_options
from gateway.kafka.lag import LagReporter
from gateway.kafka.records import Partition
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings


class FaustOffsets:
    """:class:`gateway.kafka.lag.ConsumerOffsets` of a faust app's consumer group."""

    def __init__(self, app: Any, admin: AIOKafkaAdminClient, topics: Collection[str]) -> None:
        self._app = app
        self._admin = admin
        self._topics = frozenset(topics)
        self._admin_started = False

    def assigned(self) -> set[Partition]:
        return {
            Partition(tp.topic, tp.partition)
            for tp in self._app.consumer.assignment()
            if tp.topic in self._topics
        }

    async def committed(self, partitions: set[Partition]) -> dict[Partition, int | None]:
        if not self._admin_started:  # here, so that a broker down at start only delays it
            await self._admin.start()
            self._admin_started = True
        found = await self._admin.list_consumer_group_offsets(
            self._app.conf.id, partitions=[TopicPartition(p.topic, p.partition) for p in partitions]
        )
        offsets = {Partition(tp.topic, tp.partition): meta.offset for tp, meta in found.items()}
        return {p: o if (o := offsets.get(p, -1)) >= 0 else None for p in partitions}

    async def ends(self, partitions: set[Partition]) -> dict[Partition, int]:
        found = await self._app.consumer.highwaters(*_tps(partitions))
        return {Partition(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def starts(self, partitions: set[Partition]) -> dict[Partition, int]:
        found = await self._app.consumer.earliest_offsets(*_tps(partitions))
        return {Partition(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def close(self) -> None:
        if self._admin_started:
            await self._admin.close()


def _tps(partitions: set[Partition]) -> list[TP]:
    return [TP(p.topic, p.partition) for p in partitions]


@contextlib.asynccontextmanager
async def reporting_lag(
    app: Any, kafka: KafkaSettings, metrics: Metrics, topics: Collection[str]
) -> AsyncIterator[LagReporter]:
    """Export the lag of ``app``'s group on ``topics`` while the block runs (app started)."""
    offsets = FaustOffsets(app, AIOKafkaAdminClient(**client_options(kafka)), topics)
    reporter = LagReporter(metrics.kafka_consumer_lag, app.conf.id, offsets)
    task = asyncio.create_task(reporter.run(), name="correlator-lag")
    try:
        yield reporter
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        reporter.clear()
        await offsets.close()
