"""A position kept durably on Kafka: the last id a poller has published up to.

:class:`KafkaCursorStore` keeps one cursor under one key of a compacted topic. ``load()``
reads the topic to its end and returns the highest position saved under the key (positions
only grow, and before compaction older records are still there); ``save()`` returns once
Kafka acknowledged the new one (acks=all, idempotent producer). A crash between publishing
what a position covers and saving it publishes that part again after the restart, never
less.

The topic is created when missing: compacted, one partition, the configured replication
factor (at most the brokers there are, with a warning when fewer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gateway.errors import ConfigError, KafkaUnavailableError
from gateway.events.envelope import dumps, envelope, stable_event_id, utc_now
from gateway.settings import KafkaSettings

from .client import client_options
from .follow import TopicsReader
from .records import Publisher, Record

log = logging.getLogger(__name__)

CURSOR_SCHEMA = "smsc.poll-cursor/1"
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class CursorTopic:
    """Where cursors live and how the topic is made when missing."""

    name: str
    replication_factor: int = 3
    # A bound on reading the topic at start (it holds a few records per key once compacted).
    load_timeout_seconds: float = 60.0


def cursor_record(key: str, position: int, saved_at: datetime) -> bytes:
    """The record saving ``position`` under ``key``."""
    document = envelope(CURSOR_SCHEMA, stable_event_id(CURSOR_SCHEMA, key, position), saved_at)
    document.update(key=key, position=position)
    return dumps(document)


def position_of(record: Record, key: str) -> int | None:
    """The position a record of the topic saves under ``key``; None for other keys or
    records that are not cursors."""
    if record.key != key.encode() or record.value is None:
        return None
    try:
        document: Any = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        return None
    position = document.get("position") if isinstance(document, dict) else None
    return position if isinstance(position, int) and not isinstance(position, bool) else None


class KafkaCursorStore:
    """One cursor (``key``) on a compacted topic; see the module docstring."""

    def __init__(
        self, settings: KafkaSettings, topic: CursorTopic, publisher: Publisher, key: str
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._publisher = publisher
        self.key = key

    async def load(self) -> int | None:
        """The highest position saved under the key; None when there is none yet."""
        await ensure_compacted_topic(self._settings, self._topic)
        found: list[int] = []

        def keep(record: Record) -> None:
            position = position_of(record, self.key)
            if position is not None:
                found.append(position)

        reader = TopicsReader(self._settings, [self._topic.name], keep, since_ms=0)
        task = asyncio.create_task(reader.run(), name="cursor-reader")
        try:
            async with asyncio.timeout(self._topic.load_timeout_seconds):
                await _first_of(task, reader.caught_up())
        except TimeoutError as exc:
            raise KafkaUnavailableError(f"cannot read {self._topic.name}") from exc
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return max(found, default=None)

    async def save(self, position: int) -> None:
        """Returns once Kafka has the new position."""
        value = cursor_record(self.key, position, utc_now())
        await self._publisher.publish(self._topic.name, self.key.encode(), value)


async def _first_of(reading: asyncio.Task[None], caught_up: Any) -> None:
    """Wait until the reader caught up; its failure (Kafka unreachable) is raised instead."""
    waiting = asyncio.ensure_future(caught_up)
    try:
        await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if reading.done():
        reading.result()  # raises what stopped it
        raise KafkaUnavailableError("the cursor reader stopped")


async def ensure_compacted_topic(settings: KafkaSettings, topic: CursorTopic) -> None:
    """Create ``topic`` (compacted, one partition) unless it exists."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        if topic.name in set(await admin.list_topics()):
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        factor = min(topic.replication_factor, max(brokers, 1))
        if factor < topic.replication_factor:
            log.warning("creating %s with replication %d: %d brokers", topic.name, factor, brokers)
        new = NewTopic(topic.name, 1, factor, topic_configs={"cleanup.policy": "compact"})
        response = await admin.create_topics([new])
        errors = [e for e in response.topic_errors if e[1] not in (0, _TOPIC_ALREADY_EXISTS)]
        if errors:
            raise ConfigError(f"cannot create {topic.name}: error {errors[0][1]}")
        log.info("created the compacted topic %s", topic.name)
    except KafkaError as exc:
        raise KafkaUnavailableError(f"cannot prepare {topic.name}: {exc}") from exc
    finally:
        await admin.close()
