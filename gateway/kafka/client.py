"""aiokafka producer and consumer with the gateway's durability settings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from gateway.config import KafkaSettings
from gateway.errors import KafkaUnavailableError
from gateway.metrics import Children, Metrics

from .records import Partition, Record

log = logging.getLogger(__name__)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by every client (security included, secrets not logged)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": int(settings.request_timeout_seconds * 1000),
    }
    if settings.sasl_mechanism:
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password,
        }
    return options


class KafkaPublisher:
    """Publishes with an idempotent producer and acks=all; returns once acknowledged."""

    def __init__(self, settings: KafkaSettings, metrics: Metrics, *, linger_ms: int = 2) -> None:
        self._latency = Children(metrics.kafka_publish_latency)
        self._errors = Children(metrics.kafka_publish_errors)
        self._producer = AIOKafkaProducer(
            **client_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise KafkaUnavailableError(f"producer could not start: {exc}") from exc

    async def stop(self) -> None:
        """Flush what is buffered, then close."""
        await self._producer.stop()

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions, fetching metadata as needed."""
        try:
            return set(await self._producer.partitions_for(topic))
        except KafkaError as exc:
            raise KafkaUnavailableError(f"no metadata for {topic}: {exc}") from exc

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        started = time.perf_counter()
        try:
            delivery = await self._producer.send(topic, value, key=key)
            await delivery
        except KafkaError as exc:
            self._errors(topic).inc()
            raise KafkaUnavailableError(f"publish to {topic} failed: {exc}") from exc
        self._latency(topic).observe(time.perf_counter() - started)

    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now: a cheap check for readiness."""
        try:
            return bool(await self._producer.client.force_metadata_update())
        except KafkaError:
            return False


RevokeHandler = Callable[[set[Partition]], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_revoked: RevokeHandler) -> None:
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._on_revoked({Partition(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{t.topic}:{t.partition}" for t in assigned))


class KafkaRecordSource:
    """A consumer with manual commits; records come back as plain :class:`Record`."""

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: Metrics,
        *,
        topics: Sequence[str],
        group_id: str,
        on_revoked: RevokeHandler,
    ) -> None:
        self._metrics = metrics
        self._topics = list(topics)
        self._listener = _Listener(on_revoked)
        self._consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=None,
        )

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=self._listener)
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaUnavailableError(f"consumer could not start: {exc}") from exc

    async def stop(self) -> None:
        await self._consumer.stop()

    async def fetch(self, timeout_seconds: float, max_records: int) -> list[Record]:
        batches = await self._consumer.getmany(
            timeout_ms=int(timeout_seconds * 1000), max_records=max_records
        )
        return [
            Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
            for messages in batches.values()
            for m in messages
        ]

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(p.topic, p.partition): o for p, o in offsets.items()}
            )
        except KafkaError as exc:
            self._metrics.kafka_commits.labels("error").inc()
            raise KafkaUnavailableError(f"offset commit failed: {exc}") from exc
        self._metrics.kafka_commits.labels("ok").inc()


RecordSink = Callable[[bytes | None, int], None]
PartitionsFor = Callable[[str], Awaitable[set[int]]]


class TopicFollower:
    """Reads every partition of a topic from a point in time on, and keeps following it.

    No consumer group: each process reads the whole topic. ``caught_up()`` returns once
    everything that was in the topic at start has been read. ``partitions_for`` looks the
    topic's partitions up (the producer's metadata call, which waits for them).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        sink: RecordSink,
        *,
        since_ms: int,
        partitions_for: PartitionsFor,
    ) -> None:
        self._topic = topic
        self._partitions_for = partitions_for
        self._sink = sink
        self._since_ms = since_ms
        self._consumer = AIOKafkaConsumer(
            **client_options(settings), group_id=None, enable_auto_commit=False
        )
        self._ends: dict[TopicPartition, int] = {}
        self._caught_up = asyncio.Event()

    async def caught_up(self) -> None:
        await self._caught_up.wait()

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaUnavailableError(f"cannot follow {self._topic}: {exc}") from exc
        try:
            await self._assign()
            while True:
                batches = await self._consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        self._sink(message.key, message.timestamp)
                await self._check_caught_up()
        finally:
            await self._consumer.stop()

    async def _assign(self) -> None:
        while True:
            try:
                partitions = await self._partitions_for(self._topic)
                break
            except KafkaUnavailableError as exc:
                log.warning("waiting for %s: %s", self._topic, exc)
                await asyncio.sleep(1.0)
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        starts = await self._consumer.offsets_for_times(dict.fromkeys(tps, self._since_ms))
        self._ends = await self._consumer.end_offsets(tps)
        for tp in tps:
            found = starts.get(tp)
            self._consumer.seek(tp, found.offset if found is not None else self._ends[tp])
        await self._check_caught_up()

    async def _check_caught_up(self) -> None:
        if self._caught_up.is_set():
            return
        for tp, end in self._ends.items():
            if await self._consumer.position(tp) < end:
                return
        self._caught_up.set()
