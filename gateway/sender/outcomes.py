"""Request ids whose outcome is already on Kafka, so a redelivered request is not sent again.

Filled from the results topic itself (keyed by request_id): at start the sender reads the
last ``window_seconds`` of it, then keeps following it, so results written by any replica,
including one that crashed before committing its offsets, are known before its partitions
are consumed again. Ids are forgotten after the window.

Each result costs three look-ups (the request checked, its result remembered, the result
read back): an id of up to :data:`KEPT_WHOLE_BYTES` (a UUID, a UUID with a suffix) is its
own key, exact and with nothing computed; a longer one is kept as a 16-byte BLAKE2 digest,
so no entry holds more than that many bytes of id.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

# Ids up to this long are kept as they are; longer ones as a digest.
KEPT_WHOLE_BYTES = 64


class KnownOutcomes:
    """Request ids with a recorded outcome, remembered for ``window_seconds``."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def add(self, request_id: bytes, at: float) -> None:
        """Record an outcome; ``at`` is when it was written (wall-clock seconds). An id is
        remembered from its latest outcome on."""
        key = request_id if len(request_id) <= KEPT_WHOLE_BYTES else _digest(request_id)
        seen = self._seen
        known = seen.get(key)
        if known is not None:
            if known >= at:
                return
            del seen[key]
        seen[key] = at

    def read(self, key: bytes | None, timestamp_ms: int) -> None:
        """A result read from the results topic: its key (the request id) and its Kafka
        timestamp. A record without a key names no request. Most often it is the sender's
        own result, remembered at the acknowledgement, after the record's timestamp: nothing
        moves."""
        if key:
            self.add(key, timestamp_ms / 1000)

    def __contains__(self, request_id: bytes) -> bool:
        if len(request_id) > KEPT_WHOLE_BYTES:
            request_id = _digest(request_id)
        return request_id in self._seen

    def expire(self, now: float) -> None:
        horizon = now - self._window
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def _digest(request_id: bytes) -> bytes:
    return hashlib.blake2b(request_id, digest_size=16).digest()
