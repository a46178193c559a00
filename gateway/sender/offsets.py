"""Which offsets are safe to commit when records finish out of order.

Records of a partition are processed concurrently and finish in any order, but a Kafka commit
says "everything before this offset is done". The tracker keeps, per partition, the offsets in
the order they were consumed and commits only up to the first one still running, so nothing
is acknowledged before its outcome is durable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _PartitionState:
    order: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    next_commit: int | None = None
    committed: int | None = None


class OffsetTracker(Generic[P]):
    """Per-partition bookkeeping of consumed, finished and committable offsets."""

    def __init__(self) -> None:
        self._partitions: dict[P, _PartitionState] = {}

    def track(self, partition: P, offset: int) -> None:
        """A record was consumed and its processing started."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _PartitionState()
        state.order.append(offset)

    def complete(self, partition: P, offset: int) -> None:
        """The record's outcome is durable; advance the commit point if it can move."""
        state = self._partitions.get(partition)
        if state is None:
            return  # the partition was revoked meanwhile
        state.done.add(offset)
        while state.order and state.order[0] in state.done:
            head = state.order.popleft()
            state.done.discard(head)
            state.next_commit = head + 1

    def pending(self, partition: P | None = None) -> int:
        """Records started and not complete, for one partition or all."""
        if partition is not None:
            state = self._partitions.get(partition)
            return len(state.order) if state else 0
        return sum(len(s.order) for s in self._partitions.values())

    def committable(self) -> dict[P, int]:
        """Next offset to commit for every partition whose commit point moved."""
        return {
            p: s.next_commit
            for p, s in self._partitions.items()
            if s.next_commit is not None and s.next_commit != s.committed
        }

    def committed(self, offsets: dict[P, int]) -> None:
        """Record that ``offsets`` were committed."""
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = offset

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop partitions this consumer no longer owns."""
        for partition in partitions:
            self._partitions.pop(partition, None)
