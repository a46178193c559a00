"""Which table keys come due when: an in-memory index, per partition, rebuilt after recovery.

Keys sit in buckets of ``granularity`` seconds. The index is lazy: a key whose deadline moved
later is simply added again, and whoever pops the old bucket checks the entry's real deadline.
That keeps every operation O(1) amortized, which matters for a table of millions of entries
where a scan per tick would not do.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict


class DeadlineIndex:
    """Table keys by deadline, for each partition separately."""

    def __init__(self, granularity_seconds: float = 1.0) -> None:
        self._granularity = granularity_seconds
        self._buckets: dict[int, dict[int, list[str]]] = defaultdict(dict)
        self._order: dict[int, list[int]] = defaultdict(list)

    def add(self, partition: int, key: str, deadline: float) -> None:
        """Remember that ``key`` of ``partition`` is due at ``deadline`` (or later)."""
        bucket = math.ceil(deadline / self._granularity)
        buckets = self._buckets[partition]
        keys = buckets.get(bucket)
        if keys is None:
            keys = buckets[bucket] = []
            heapq.heappush(self._order[partition], bucket)
        keys.append(key)

    def pop_due(self, partition: int, now: float) -> list[str]:
        """Every key of ``partition`` whose bucket ended by ``now``, forgotten here."""
        order, buckets = self._order[partition], self._buckets[partition]
        due: list[str] = []
        while order and order[0] * self._granularity <= now:
            due.extend(buckets.pop(heapq.heappop(order)))
        return due

    def clear(self) -> None:
        self._buckets.clear()
        self._order.clear()
