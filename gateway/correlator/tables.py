"""faust tables written the way a busy agent needs: the store at once, the changelog by the agent.

A faust table is two things: a local store per partition (RocksDB or memory), and a
compacted changelog topic with the same partitions, from which faust restores the store on
recovery or on a rebalance. ``table[key] = value`` writes both: the store, then a changelog
record handed to faust's producer buffer, which a task sends one record at a time, each
send yielding to the event loop three times (``Topic.publish_message`` waits for the
producer's ``maybe_start``, a ``mode`` stampede wrapper that sleeps three times per call). The
conductor stops delivering records while that buffer holds more than 100, so under load a
worker's table writes run at a third of the event loop's turns, and the agent with them.

So the agents write the same two things themselves (:class:`TableStore`): the value goes into
the table's store (``table.data``, which puts it in the store partition of the event being
processed, as ``table[key]`` does) and the change is noted; after the step the agent hands the
noted changes to faust's producer directly (:meth:`Changelog.send`), to the changelog
partition numbered like the event's partition (what ``Table.partition_for_key`` picks for a
table that is not ``use_partitioner``), and records the acknowledged offsets in the store
(``set_persisted_offset``, as faust's own changelog callback does, so a kept RocksDB directory
reads only the changelog's tail at the next start). Recovery, standby replicas and partition
ownership stay faust's: they only read the changelog topic and the store.

The offsets are written once per changelog partition for all the records one answer from
Kafka acknowledged (:class:`PersistedOffsets`), not once per record as faust does: with RocksDB
each is a write of its own, and one join makes two or three changelog records. The offset is
only where the next recovery starts reading; one a little behind makes it read a few records
again, which it applies as before. One ahead makes it skip records the store never applied, for
good: so an offset is only written while the worker still actively owns the partition, in the
consumer generation of the event that made the record. An answer that comes after a rebalance
(faust does not wait for the agent's event in flight) is for a partition that may now be a
standby here, filled from the changelog by faust, or that may come back later; its offset says
nothing about what that store holds.

The changes count among the event's outputs (:mod:`gateway.correlator.outputs`): the event is
acked only once its changelog records are acknowledged too; and faust flushes its producer
before every commit anyway.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from faust.types import TP

from .outputs import Sends, Settle

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Change:
    """One table change waiting for its changelog record: value None deletes the key."""

    store: Any  # the faust table's store (table.data)
    topic: str
    key: bytes
    value: bytes | None


class TableStore(Generic[V]):
    """A faust table of bytes seen as a :class:`~gateway.correlator.join.Store` of ``V``;
    writes go to the table's store and are noted in ``changes``."""

    def __init__(
        self,
        table: Any,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        changelog: Changelog,
    ) -> None:
        self.table = table
        self._store = table.data
        self._topic = table.changelog_topic.get_topic_name()
        self._encode = encode
        self._decode = decode
        self._changes = changelog.pending

    def get(self, key: str) -> V | None:
        raw = self._store.get(key.encode())
        return None if raw is None else self._decode(raw)

    def put(self, key: str, value: V) -> None:
        raw, store_key = self._encode(value), key.encode()
        self._store[store_key] = raw
        self._changes.append(Change(self._store, self._topic, store_key, raw))

    def delete(self, key: str) -> None:
        store_key = key.encode()
        try:
            del self._store[store_key]
        except KeyError:
            return
        self._changes.append(Change(self._store, self._topic, store_key, None))

    def items(self) -> Iterator[tuple[str, V]]:
        for key, raw in self._store.items():
            yield key.decode(), self._decode(raw)


class Changelog:
    """The changes the tables noted during a step, sent through the worker's producer.

    ``generation`` and ``actives`` are the consumer's (see :class:`PersistedOffsets`)."""

    def __init__(
        self,
        sends: Sends,
        generation: Callable[[], int] = lambda: 0,
        actives: Callable[[], Collection[TP]] | None = None,
    ) -> None:
        self._sends = sends
        self.pending: list[Change] = []
        self._offsets = PersistedOffsets(generation, actives)

    def take(self) -> list[Change]:
        """The pending changes, the last one per key only (compaction would keep no other),
        and none pending any more."""
        latest: dict[tuple[str, bytes], Change] = {}
        for change in self.pending:
            latest[(change.topic, change.key)] = change
        self.pending.clear()
        return list(latest.values())

    async def send(
        self, changes: list[Change], partition: int, settle: Settle, generation: int = 0
    ) -> None:
        """Send ``changes`` to ``partition`` of their changelogs; ``settle`` is called once per
        change with Kafka's answer, and the store records the offset by the end of that turn of
        the event loop, if the consumer is still in ``generation`` (that of the event the
        changes come from) and owns the partition."""
        for change in changes:
            stored = functools.partial(self._offsets.note, change.store, generation=generation)
            await self._sends.send(
                change.topic, change.key, change.value, settle, partition=partition, stored=stored
            )


class PersistedOffsets:
    """As faust's own changelog callback: each store remembers the offset it has, so a kept
    RocksDB directory reads only the changelog's tail at the next start; written once per
    partition for the acknowledgements that came in one turn of the event loop.

    Only for a partition the worker actively owns (``actives``: the changelog partitions the
    consumer's assignor gave it as active; None: all), and only in the consumer generation the
    record was sent in (``generation``: the current one): faust's recovery starts reading the
    changelog at this offset, so an offset written after the partition moved could pass records
    of its next owner that this store never applied, and a later recovery here would never read
    them."""

    def __init__(
        self,
        generation: Callable[[], int] = lambda: 0,
        actives: Callable[[], Collection[TP]] | None = None,
    ) -> None:
        self._generation = generation
        self._actives = actives
        self._latest: dict[tuple[int, str, int], tuple[Any, int, int]] = {}
        self._scheduled = False

    def note(self, store: Any, metadata: Any, *, generation: int = 0) -> None:
        """Kafka stored a changelog record of ``store`` (``metadata``: its topic, partition
        and offset), sent in consumer ``generation``."""
        if generation != self._generation():
            return  # a rebalance came since: the partition may be another's now
        key = (id(store), metadata.topic, metadata.partition)
        known = self._latest.get(key)
        if known is None or metadata.offset > known[1]:
            self._latest[key] = (store, metadata.offset, generation)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        """Write the offsets noted since the last time, the highest per partition, of the
        partitions still actively owned in the same generation."""
        latest, self._latest = self._latest, {}
        self._scheduled = False
        current = self._generation()
        actives = None if self._actives is None else self._actives()
        for (_, topic, partition), (store, offset, generation) in latest.items():
            tp = TP(topic, partition)
            if generation != current or (actives is not None and tp not in actives):
                continue
            store.set_persisted_offset(tp, offset)
