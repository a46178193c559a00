"""A kept RocksDB directory checked against the changelogs before faust opens it.

faust keeps, in each RocksDB partition of a table, the offset of the last changelog record it
wrote or read (``set_persisted_offset``); at start it reads the changelog only from there on.
When Kafka lost its data (a broker rebuilt without its volume, a cluster recreated while the
workers kept their volumes), the changelog is shorter than that offset, and faust refuses to
start (``ConsistencyError``: the persisted offset is higher than the changelog's highwater);
under a supervisor that restarts it, a crash loop. The local store is then no copy of
anything Kafka still has.

Kafka Streams' answer, taken here: a partition whose local checkpoint is ahead of the end of
its changelog is wiped, with a warning, and faust restores it from the changelog like any
partition it has no copy of. A partition behind or at the end is kept: faust reads the rest.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.errors import KafkaUnavailableError
from gateway.kafka.client import client_options
from gateway.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalPartition:
    """One partition of a table as the local store has it."""

    changelog: str
    partition: int
    path: Path
    persisted_offset: int


def local_partitions(table: Any, partitions: int) -> list[LocalPartition]:
    """The RocksDB partitions of ``table`` that exist on disk and know their offset (none for
    a store that keeps nothing on disk)."""
    store = table.data
    if not hasattr(store, "partition_path") or not hasattr(store, "rocksdb_options"):
        return []
    changelog = table.changelog_topic.get_topic_name()
    found = []
    for partition in range(partitions):
        path = Path(store.partition_path(partition))
        offset = _persisted_offset(store, path) if path.exists() else None
        if offset is not None:
            found.append(LocalPartition(changelog, partition, path, offset))
    return found


def _persisted_offset(store: Any, path: Path) -> int | None:
    db = store.rocksdb_options.open(path)
    try:
        raw = db.get(store.offset_key)
    finally:
        db.close()
    return None if raw is None else int(raw)


def stale(
    found: Sequence[LocalPartition], ends: Mapping[tuple[str, int], int]
) -> list[LocalPartition]:
    """The partitions whose persisted offset is not below the end of their changelog: the
    changelog has no record there, so the store holds what Kafka no longer has."""
    return [p for p in found if p.persisted_offset >= ends.get((p.changelog, p.partition), 0)]


async def changelog_ends(
    kafka: KafkaSettings, topics: Sequence[str], partitions: int
) -> dict[tuple[str, int], int]:
    """The end offset (next offset to be written) of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    try:
        await consumer.start()
        wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(wanted)
    except KafkaError as exc:
        raise KafkaUnavailableError(f"cannot read the changelogs' end offsets: {exc}") from exc
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def discard_stale_partitions(
    kafka: KafkaSettings, tables: Sequence[Any], partitions: int
) -> list[LocalPartition]:
    """Delete every local table partition that is ahead of its changelog; returns them."""
    found = [p for table in tables for p in local_partitions(table, partitions)]
    if not found:
        return []
    ends = await changelog_ends(kafka, sorted({p.changelog for p in found}), partitions)
    wiped = stale(found, ends)
    for part in wiped:
        log.warning(
            "the local store of %s partition %d is ahead of its changelog (offset %d, the "
            "changelog ends at %d): Kafka lost data the store had; deleting %s and restoring "
            "the partition from the changelog",
            part.changelog,
            part.partition,
            part.persisted_offset,
            ends.get((part.changelog, part.partition), 0),
            part.path,
        )
        shutil.rmtree(part.path)
    return wiped
