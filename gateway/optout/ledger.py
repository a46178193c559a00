"""The incoming SMS already acted on, so a replayed one is not sent to the provider again.

Filled at start from the opt-out events of the last ``remember_seconds`` (each names the
``incoming_event_id`` it answers) and by every opt-out published since. Entries are 16-byte
digests, at most ``max_entries`` of them, the oldest dropped first.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict

import orjson

from gateway.kafka.records import Record

log = logging.getLogger(__name__)


class OptOutLedger:
    """See the module docstring."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._handled: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._handled)

    def __contains__(self, incoming_event_id: str) -> bool:
        return _digest(incoming_event_id) in self._handled

    def add(self, incoming_event_id: str) -> None:
        key = _digest(incoming_event_id)
        self._handled[key] = None
        self._handled.move_to_end(key)
        while len(self._handled) > self._max:
            self._handled.popitem(last=False)

    def on_record(self, record: Record) -> None:
        """A record of the opt-out topic (read from its recent past, then followed)."""
        try:
            event = orjson.loads(record.value or b"")
            incoming = event["incoming_event_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("opt-out topic record %s:%d not understood", record.topic, record.offset)
            return
        if isinstance(incoming, str):
            self.add(incoming)


def _digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=16).digest()
