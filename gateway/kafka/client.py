"""aiokafka producer and consumer with the gateway's durability settings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from gateway.errors import GatewayError, KafkaUnavailableError
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings
from gateway.shutdown import CLOSE_SECONDS, run_until

from .claims import Claims, encode_claim
from .errors import publish_error, read_error
from .health import PROBE_INTERVAL_SECONDS
from .lag import AiokafkaOffsets, LagReporter
from .managed import ManagedProducer, delivery_problem
from .producers import CLOSE_TIMEOUT_SECONDS
from .records import Partition, Record

log = logging.getLogger(__name__)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by every client (security included, secrets not logged)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": int(settings.request_timeout_seconds * 1000),
        "metadata_max_age_ms": int(settings.metadata_max_age_seconds * 1000),
    }
    if settings.sasl_mechanism:
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password,
        }
    return options


class KafkaPublisher:
    """Publishes with an idempotent producer and acks=all; returns once acknowledged.

    Every publish is bounded by the delivery timeout; a producer whose sequence broke is
    replaced, and errors are sorted into retriable and refused for good
    (:mod:`gateway.kafka.managed`).
    """

    def __init__(self, settings: KafkaSettings, metrics: Metrics, *, linger_ms: int = 2) -> None:
        self._kafka = ManagedProducer(
            settings,
            metrics,
            client_options(settings),
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
        )
        self.health = self._kafka.health

    async def start(self) -> None:
        await self._kafka.start()

    async def stop(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Flush what is buffered, then close; what is not acknowledged within
        ``timeout_seconds`` fails."""
        await self._kafka.stop(timeout_seconds)

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Return once Kafka acknowledged the record; at the latest after the delivery
        timeout, :class:`KafkaUnavailableError` (or a :class:`KafkaRefusedError`)."""
        started, deadline = time.perf_counter(), self._kafka.deadline()
        delivery = await self._hand_over(topic, key, value, deadline)
        loop = asyncio.get_running_loop()
        await asyncio.wait([delivery], timeout=max(0.0, deadline - loop.time()))
        if not delivery.done():
            late = KafkaUnavailableError(
                f"publish to {topic}: no acknowledgement within {self._kafka.timeout_seconds} s"
            )
            self._kafka.failed(topic, late)
            raise late
        problem = delivery_problem(delivery)
        if problem is not None:
            raise publish_error(topic, problem)
        self._kafka.delivered(topic, [time.perf_counter() - started])

    async def enqueue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        acked: Callable[[GatewayError | None], None],
    ) -> None:
        """Hand one record to the producer without waiting for Kafka; ``acked`` is called
        with None once Kafka acknowledged it, or with the error when it cannot (at the
        latest after the delivery timeout).

        Records handed over in one order are appended to their partition in that order
        (while the producer is not replaced); the caller needs no task per record, which is
        what a high-rate path pays for otherwise.
        """
        started = time.perf_counter()
        try:
            delivery = await self._hand_over(topic, key, value, self._kafka.deadline())
        except GatewayError as exc:
            acked(exc)
            return
        self._kafka.deadlines.watch(delivery)
        delivery.add_done_callback(functools.partial(self._report, topic, started, acked))

    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now: a cheap check for readiness."""
        return await self._kafka.slot.reachable(PROBE_INTERVAL_SECONDS)

    async def probe(self) -> None:
        """Ask the brokers whether they answer; the outcome goes to :attr:`health`."""
        await self._kafka.probe()

    async def _hand_over(
        self, topic: str, key: bytes | None, value: bytes, deadline: float
    ) -> asyncio.Future[Any]:
        """Give the record to the current producer before ``deadline``; its delivery."""
        try:
            generation, producer = await self._kafka.acquire(deadline)
        except KafkaUnavailableError as exc:
            self._kafka.failed(topic, exc)
            raise
        try:
            async with asyncio.timeout_at(deadline):
                delivery: asyncio.Future[Any] = await producer.send(topic, value, key=key)
        except TimeoutError as exc:
            late = KafkaUnavailableError(f"publish to {topic}: not taken in time")
            self._kafka.failed(topic, late)
            raise late from exc
        except KafkaError as exc:
            raise self._kafka.send_failed(topic, generation, exc) from exc
        delivery.add_done_callback(functools.partial(self._settled, topic, generation))
        return delivery

    def _settled(self, topic: str, generation: int, delivery: asyncio.Future[Any]) -> None:
        # Every delivery's outcome, whoever still waits for it: a failed batch replaces the
        # producer even when its callers stopped waiting.
        problem = delivery_problem(delivery)
        if problem is not None:
            self._kafka.delivery_failed(topic, generation, problem)

    def _report(
        self,
        topic: str,
        started: float,
        acked: Callable[[GatewayError | None], None],
        delivery: asyncio.Future[Any],
    ) -> None:
        problem = delivery_problem(delivery)
        if problem is None:
            self._kafka.delivered(topic, [time.perf_counter() - started])
            acked(None)
            return
        acked(publish_error(topic, problem))


RevokeHandler = Callable[[set[Partition]], Awaitable[None]]
AssignHandler = Callable[[Sequence[TopicPartition]], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_revoked: RevokeHandler, on_assigned: AssignHandler) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._on_revoked({Partition(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{t.topic}:{t.partition}" for t in assigned))
        await self._on_assigned(assigned)


class KafkaRecordSource:
    """A consumer with manual commits; records come back as plain :class:`Record`.

    While started it exports its group's lag on the partitions it holds (:mod:`.lag`).

    With ``claims``, it keeps the group's claims (:mod:`gateway.kafka.claims`): records are
    marked as replays, :meth:`claim` makes a claim durable before records start, and every
    commit carries the claim along.

    ``settle``, when given, is awaited after every assignment before records are fetched
    (given up after the request timeout): the sender reads the results already on Kafka
    there, so a request the partition's previous owner finished is known as done even when
    its offset was not committed past it.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: Metrics,
        *,
        topics: Sequence[str],
        group_id: str,
        on_revoked: RevokeHandler,
        claims: bool = False,
        fetch_min_bytes: int = 1,
        fetch_max_wait_seconds: float = 0.5,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``fetch_min_bytes`` and ``fetch_max_wait_seconds``: the broker answers a fetch once
        it has that much or that time has passed (aiokafka's defaults: 1 byte, 0.5 s)."""
        self._metrics = metrics
        self._settings = settings
        self._topics = list(topics)
        self._group_id = group_id
        self._keeps_claims = claims
        self._settle = settle
        self._claims = Claims()
        self._commit_lock = asyncio.Lock()
        self._admin: AIOKafkaAdminClient | None = None
        # Set while the claims of newly assigned partitions are read: fetched records wait.
        self._reading_claims: asyncio.Event = asyncio.Event()
        self._reading_claims.set()

        async def revoked(partitions: set[Partition]) -> None:
            await on_revoked(partitions)
            self._claims.forget(partitions)

        self._listener = _Listener(revoked, self._assigned)
        self._consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=None,
            fetch_min_bytes=fetch_min_bytes,
            fetch_max_wait_ms=int(fetch_max_wait_seconds * 1000),
        )
        self._lag = LagReporter(
            metrics.kafka_consumer_lag, group_id, AiokafkaOffsets(self._consumer)
        )
        self._lag_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=self._listener)
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaUnavailableError(f"consumer could not start: {exc}") from exc
        self._lag_task = asyncio.create_task(self._lag.run(), name="consumer-lag")

    async def stop(self) -> None:
        """Close the consumer; given up after :data:`~gateway.shutdown.CLOSE_SECONDS`: leaving
        the group waits for a coordinator that may be gone, and nothing depends on it."""
        if self._lag_task is not None:
            self._lag_task.cancel()
            await asyncio.gather(self._lag_task, return_exceptions=True)
            self._lag.clear()
        deadline = asyncio.get_running_loop().time() + CLOSE_SECONDS
        await run_until(self._close(), deadline, f"closing the consumer of {self._group_id}")

    async def _close(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            if self._admin is not None:
                await self._admin.close()

    async def fetch(self, timeout_seconds: float, max_records: int) -> list[Record]:
        if not self._reading_claims.is_set():
            # The claims of a new assignment first: records taken now could not be marked.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reading_claims.wait(), timeout_seconds)
            return []
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout_seconds * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise read_error(self._topics, exc) from exc
        records: list[Record] = []
        for tp, messages in batches.items():
            records += self._claims.fetched_records(Partition(tp.topic, tp.partition), messages)
        return records

    async def claim(self, records: Sequence[Record]) -> list[Record]:
        """Make durable, in the commit metadata, that ``records`` may be started; returns
        those of partitions still assigned."""
        if not self._keeps_claims:
            return list(records)
        assigned = {Partition(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        # A partition revoked since the fetch is read again by its next owner.
        ours = [r for r in records if r.source in assigned]
        async with self._commit_lock:
            needed = self._claims.needed(ours)
            if needed:
                await self._send_commit({p: (o, encode_claim(c)) for p, (o, c) in needed.items()})
                for partition, (_, frontier) in needed.items():
                    self._claims.claimed(partition, frontier)
        return ours

    async def _assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Read what the group committed for the partitions now ours (claims included)."""
        self._reading_claims.clear()
        try:
            await self._settle_assignment()
            if not self._keeps_claims:
                for tp in assigned:
                    self._claims.assigned(Partition(tp.topic, tp.partition), None, None)
                return
            found = await self._claims_found(assigned)
        finally:
            self._reading_claims.set()
        for tp in assigned:
            committed = found.get(tp)
            offset = committed.offset if committed is not None and committed.offset >= 0 else None
            metadata = committed.metadata if committed is not None else None
            self._claims.assigned(Partition(tp.topic, tp.partition), offset, metadata)

    async def _settle_assignment(self) -> None:
        if self._settle is None:
            return
        try:
            async with asyncio.timeout(self._settings.request_timeout_seconds):
                await self._settle()
        except (KafkaUnavailableError, TimeoutError) as exc:
            log.warning("not settled before fetching: %r", exc)

    async def _claims_found(self, assigned: Sequence[TopicPartition]) -> dict[TopicPartition, Any]:
        try:
            async with asyncio.timeout(self._settings.request_timeout_seconds):
                return await self._read_committed(list(assigned))
        except (KafkaError, TimeoutError) as exc:
            log.warning("claims of %s not read; replays will not be recognised: %r", assigned, exc)
            return {}

    async def _read_committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Any]:
        """The group's committed offsets and metadata, retried while the coordinator moves."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(**client_options(self._settings))
            await admin.start()
            self._admin = admin
        while True:
            try:
                found: dict[TopicPartition, Any] = await self._admin.list_consumer_group_offsets(
                    self._group_id, partitions=partitions
                )
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                await asyncio.sleep(0.1)
                continue
            return found

    async def caught_up(self) -> set[Partition]:
        """The assigned partitions read to the end the broker last reported for them."""
        found: set[Partition] = set()
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:
                continue  # nothing fetched from it yet
            try:
                position = await self._consumer.position(tp)
            except KafkaError:
                continue  # revoked meanwhile
            if position >= end:
                found.add(Partition(tp.topic, tp.partition))
        return found

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        if not offsets:
            return
        async with self._commit_lock:
            await self._send_commit({p: (o, self._claims.metadata(p)) for p, o in offsets.items()})
            for partition, offset in offsets.items():
                self._claims.committed(partition, offset)

    async def _send_commit(self, offsets: Mapping[Partition, tuple[int, str]]) -> None:
        try:
            await self._consumer.commit(
                {TopicPartition(p.topic, p.partition): o for p, o in offsets.items()}
            )
        except KafkaError as exc:
            self._metrics.kafka_commits.labels("error").inc()
            raise KafkaUnavailableError(f"offset commit failed: {exc}") from exc
        self._metrics.kafka_commits.labels("ok").inc()
