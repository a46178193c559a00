"""Request ids whose outcome is already on Kafka, so a redelivered request is not sent again.

Filled from the results topic itself (keyed by request_id): at start the sender reads the
last ``window_seconds`` of it, then keeps following it, so results written by any replica,
including one that crashed before committing its offsets, are known before its partitions
are consumed again. Ids are kept as 16-byte digests and forgotten after the window.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class KnownOutcomes:
    """Request ids with a recorded outcome, remembered for ``window_seconds``."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def add(self, request_id: bytes, at: float) -> None:
        """Record an outcome; ``at`` is when it was written (wall-clock seconds). An id is
        remembered from its latest outcome on."""
        key = _digest(request_id)
        seen = self._seen
        known = seen.get(key)
        if known is not None:
            # Most often the sender's own result read back by the follower, which it
            # remembered at the acknowledgement, after the record's timestamp.
            if known >= at:
                return
            del seen[key]
        seen[key] = at

    def read(self, key: bytes | None, timestamp_ms: int) -> None:
        """A result read from the results topic: its key (the request id) and its Kafka
        timestamp. A record without a key names no request."""
        if key:
            self.add(key, timestamp_ms / 1000)

    def __contains__(self, request_id: bytes) -> bool:
        return _digest(request_id) in self._seen

    def expire(self, now: float) -> None:
        horizon = now - self._window
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def _digest(request_id: bytes) -> bytes:
    return hashlib.blake2b(request_id, digest_size=16).digest()
