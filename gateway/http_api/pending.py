"""The poller's pending set: (message id, phone) pairs accepted and not yet finally reported.

Fed from the topics (:class:`PendingTracker`): an ``accepted`` recipient of a send result of a
reconciled transport enters; a final report on ``smsc.dlr.v1``, from any source, removes it.
Entries live in two queues, each in the order they fall due, so finding what is due never
scans the set:

- ``fresh``: not polled yet, in acceptance order; due ``min_age_seconds`` after acceptance;
- ``polled``: polled and still not final, in poll order; due ``repoll_seconds`` after it.

Memory is bounded: at most ``max_pending`` entries (beyond it the entry polled longest ago
goes first, then the oldest fresh one), entries older than ``max_age_seconds`` are dropped
when they come up, and the keys of the last ``remember_final`` final reports are kept (as
16-byte digests) so a result read after its final report does not enter. Nothing here
does I/O; times are wall-clock seconds, as Kafka timestamps are.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.kafka.records import Record
from gateway.settings.http_api import PollerSettings

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass(slots=True)
class PendingMessage:
    message_id: str
    phone: str
    accepted_at: float
    polled_at: float | None = None
    polls: int = 0

    @property
    def key(self) -> Key:
        return self.message_id, self.phone


class PendingSet:
    """See the module docstring."""

    def __init__(
        self, settings: PollerSettings, *, on_drop: Callable[[str], None] = lambda _: None
    ) -> None:
        self._settings = settings
        self._on_drop = on_drop
        self._fresh: OrderedDict[Key, PendingMessage] = OrderedDict()
        self._polled: OrderedDict[Key, PendingMessage] = OrderedDict()
        self._taken: dict[Key, PendingMessage] = {}
        self._final: OrderedDict[bytes, None] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._fresh) + len(self._polled) + len(self._taken)

    def __contains__(self, key: Key) -> bool:
        return key in self._fresh or key in self._polled or key in self._taken

    def accepted(self, message_id: str, phone: str, at: float) -> None:
        """A message the provider accepted at ``at``."""
        key = (message_id, phone)
        if key in self or _digest(key) in self._final:
            return
        self._fresh[key] = PendingMessage(message_id, phone, at)
        while len(self) > self._settings.max_pending:
            self._evict()

    def finished(self, message_id: str, phone: str) -> None:
        """A final report arrived: stop tracking, and ignore the message from now on."""
        key = (message_id, phone)
        for queue in (self._fresh, self._polled, self._taken):
            queue.pop(key, None)
        if self._settings.remember_final:
            self._final[_digest(key)] = None
            while len(self._final) > self._settings.remember_final:
                self._final.popitem(last=False)

    def take_due(self, now: float, limit: int) -> list[PendingMessage]:
        """Up to ``limit`` entries due for a status query, now held until :meth:`polled`."""
        # islice stops without pulling (and so popping) one entry too many.
        due = list(itertools.islice(self._due(now), limit))
        for entry in due:
            self._taken[entry.key] = entry
        return due

    def polled(self, entry: PendingMessage, *, final: bool, now: float) -> None:
        """The query for ``entry`` was answered (``final``) or has to be made again."""
        if self._taken.pop(entry.key, None) is None or final:
            return  # finished meanwhile, or done now
        entry.polled_at = now
        entry.polls += 1
        self._polled[entry.key] = entry

    def returned(self, entries: list[PendingMessage]) -> None:
        """The queries could not be made: due again at once, in the same order."""
        for entry in reversed(entries):
            if self._taken.pop(entry.key, None) is not None:
                self._fresh[entry.key] = entry
                self._fresh.move_to_end(entry.key, last=False)

    def _due(self, now: float) -> Iterator[PendingMessage]:
        settings = self._settings
        yield from self._pop_due(self._polled, now, settings.repoll_seconds, polled=True)
        yield from self._pop_due(self._fresh, now, settings.min_age_seconds, polled=False)

    def _pop_due(
        self, queue: OrderedDict[Key, PendingMessage], now: float, age: float, *, polled: bool
    ) -> Iterator[PendingMessage]:
        while queue:
            entry = next(iter(queue.values()))
            since = entry.polled_at if polled and entry.polled_at is not None else entry.accepted_at
            if entry.accepted_at < now - self._settings.max_age_seconds:
                queue.popitem(last=False)
                self.expired += 1
                self._on_drop("expired")
                continue
            if since > now - age:
                return
            queue.popitem(last=False)
            yield entry

    def _evict(self) -> None:
        queue = self._polled or self._fresh
        if queue:
            queue.popitem(last=False)
            self.evicted += 1
            self._on_drop("evicted")


class PendingTracker:
    """Reads send results and reports into a :class:`PendingSet`."""

    def __init__(
        self, pending: PendingSet, *, results_topic: str, dlr_topic: str, settings: PollerSettings
    ) -> None:
        self._pending = pending
        self._results_topic = results_topic
        self._dlr_topic = dlr_topic
        self._transports = frozenset(settings.transports)

    def on_record(self, record: Record) -> None:
        """Account for one record of either topic; anything unreadable is skipped."""
        event = _event(record)
        if event is None:
            return
        if record.topic == self._results_topic:
            self._on_result(event, record.timestamp_ms / 1000)
        elif record.topic == self._dlr_topic and event.get("final") is True:
            self._pending.finished(str(event.get("message_id")), str(event.get("phone")))

    def _on_result(self, event: dict[str, Any], at: float) -> None:
        if event.get("outcome") != "accepted" or event.get("transport") not in self._transports:
            return
        for recipient in event.get("recipients", ()):
            if isinstance(recipient, dict) and recipient.get("status") == "accepted":
                for message_id in dict.fromkeys(recipient.get("message_ids", ())):
                    self._pending.accepted(str(message_id), str(recipient.get("phone")), at)


def _event(record: Record) -> dict[str, Any] | None:
    if record.value is None:
        return None
    try:
        event = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        log.debug("unreadable record at %s:%d:%d", record.topic, record.partition, record.offset)
        return None
    return event if isinstance(event, dict) else None


def _digest(key: Key) -> bytes:
    return hashlib.blake2b("\x1f".join(key).encode(), digest_size=16).digest()
