"""Which records a consumer group may already have started: the *claim*, kept with its offsets.

A committed offset says "everything before this is done"; it cannot say what a consumer had
started but not finished when it crashed. The sender needs that: a request submitted just
before a crash, whose result never reached Kafka, is consumed again and must be known as a
*replay* (its first submit may have gone through). So before a consumer starts a record, it
makes durable that records up to it may be started (the claim), in the metadata string of an
offset commit of its group (``started-below=<offset>``): the committed offset itself does not
move. Every later commit of the partition carries the claim along, so it is never lost.

When a partition is assigned, the group's committed offset and metadata are read: a record
below the inherited claim may have been started by an earlier owner, and is a replay. The
claim is conservative: records fetched but never started before a crash count as claimed.

This module is the bookkeeping, without I/O; :class:`~gateway.kafka.client.KafkaRecordSource`
reads and writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .records import Partition, Record, fetched_record

_PREFIX = "started-below="


def encode_claim(frontier: int | None) -> str:
    """The commit metadata that carries ``frontier`` (empty for none)."""
    return "" if frontier is None else f"{_PREFIX}{frontier}"


def decode_claim(metadata: str | None) -> int | None:
    """The claim in a commit's metadata; None when there is none (or it is not ours)."""
    if not metadata or not metadata.startswith(_PREFIX):
        return None
    digits = metadata.removeprefix(_PREFIX)
    return int(digits) if digits.isdigit() else None


class Fetched(Protocol):
    """A record as the consumer fetched it (aiokafka's ``ConsumerRecord``)."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...


@dataclass(slots=True)
class _State:
    inherited: int | None = None  # the claim found at assignment
    claimed: int | None = None  # the claim this consumer made durable
    committed: int | None = None  # the offset last committed (found, or by this consumer)
    first_fetched: int | None = None  # the first offset fetched since the assignment

    @property
    def frontier(self) -> int | None:
        known = [c for c in (self.inherited, self.claimed) if c is not None]
        return max(known) if known else None

    @property
    def commit_point(self) -> int | None:
        """An offset safe to commit with a new claim: nothing before it is still running."""
        return self.committed if self.committed is not None else self.first_fetched


class Claims:
    """Per assigned partition: the inherited claim, this consumer's claim, its commits."""

    def __init__(self) -> None:
        self._partitions: dict[Partition, _State] = {}

    def assigned(self, partition: Partition, committed: int | None, metadata: str | None) -> None:
        """The partition is ours; ``committed``/``metadata`` as the group last committed."""
        self._partitions[partition] = _State(inherited=decode_claim(metadata), committed=committed)

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)

    def fetched(self, record: Record) -> Record:
        """Note a fetched record; the record marked as a replay when it is one."""
        if record.offset < self._replays_below(record.source, record.offset):
            return Record(
                record.topic,
                record.partition,
                record.offset,
                record.key,
                record.value,
                record.timestamp_ms,
                replay=True,
            )
        return record

    def fetched_records(self, partition: Partition, fetched: Sequence[Fetched]) -> list[Record]:
        """:meth:`fetched` for each of ``partition``'s records just fetched (in offset
        order), made into records here: its state is looked up once for them all."""
        if not fetched:
            return []
        replays_below = self._replays_below(partition, fetched[0].offset)
        return [
            fetched_record(
                partition, m.offset, m.key, m.value, m.timestamp, replay=m.offset < replays_below
            )
            for m in fetched
        ]

    def _replays_below(self, partition: Partition, offset: int) -> int:
        """Note that ``partition`` was fetched at ``offset``; the offset below which its
        records are replays (0 for none)."""
        # A partition whose claims were not read (a race with its assignment) has none.
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _State()
        if state.first_fetched is None:
            state.first_fetched = offset
        return state.inherited or 0

    def needed(self, records: Iterable[Record]) -> dict[Partition, tuple[int, int]]:
        """Per partition whose claim does not cover ``records`` yet: (offset to commit, new
        claim). The offset is the last committed one (or the first fetched), never past a
        record still running."""
        tops: dict[Partition, int] = {}
        for record in records:
            top = record.offset + 1
            if top > tops.get(record.source, -1):
                tops[record.source] = top
        needed: dict[Partition, tuple[int, int]] = {}
        for partition, top in tops.items():
            state = self._partitions.get(partition)
            if state is None or state.commit_point is None:
                continue  # never fetched here: nothing to claim
            if state.frontier is None or top > state.frontier:
                needed[partition] = (state.commit_point, top)
        return needed

    def claimed(self, partition: Partition, frontier: int) -> None:
        state = self._partitions.get(partition)
        if state is not None:
            state.claimed = max(frontier, state.claimed or 0)

    def committed(self, partition: Partition, offset: int) -> None:
        state = self._partitions.get(partition)
        if state is not None:
            state.committed = offset

    def metadata(self, partition: Partition) -> str:
        """What every commit of ``partition`` carries, so the claim is never lost."""
        state = self._partitions.get(partition)
        return encode_claim(state.frontier if state is not None else None)
