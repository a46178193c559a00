"""Publishing in micro-batches: many concurrent publishes, one produce batch per partition.

:class:`KafkaPublisher` hands every record to ``AIOKafkaProducer.send()``, which for each one
waits on metadata, serializes, partitions, appends to the accumulator and creates a future
that the producer resolves with the record's metadata. When hundreds of callers publish at
once (webhook callbacks, DELIVER_SMs), most of that is the same work repeated.
:class:`BatchingPublisher` keeps the same promise (``publish`` returns once Kafka
acknowledged the record, acks=all, idempotent producer) with less work per record:

- each (topic, partition) has a *lane*. A record is appended to the lane's open batch (an
  aiokafka ``BatchBuilder``) and its caller waits on a future of its own;
- the lane's drain task hands the open batch to ``send_batch()`` on the next turn of the
  event loop, so everything published during this turn goes out together. Until Kafka has
  answered the lane's previous batch, the next batch keeps filling: the batches grow with
  the load, and a lone record leaves at once. (The idempotent producer has one produce
  request in flight per broker, so a batch handed over earlier would only wait in its
  accumulator, and ``send_batch()`` would wait with a timer per batch for room there);
- the batch's acknowledgement settles every caller in it: all succeed, or all fail with
  :class:`~gateway.errors.KafkaUnavailableError`.

What stays as with ``send()``:

- Partitioning: the producer's own ``DefaultPartitioner`` instance picks the partition
  (murmur2 of the key, as the Java client; a random available partition without a key), so
  keyed records land where any other writer of the topic puts them.
- Order: one lane per partition, batches handed over one after the other in append order,
  and the idempotent producer's sequence numbers keep them in that order through retries.
- Idempotence and acks=all: ``send_batch()`` batches go through the same accumulator,
  which stamps them with the producer id, epoch and sequence numbers.
- A caller that stops waiting (a timeout) does not take its record out: it may still be
  stored, as with ``send()``.

A batch is at most ``max_batch_bytes``; the topics' ``max.message.bytes`` must not be lower.
A batch the broker refuses as a whole fails all its callers, and aiokafka's idempotent
producer then fails the partition's next batches as out of sequence, with ``send()`` as here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from gateway.config import KafkaSettings
from gateway.errors import KafkaUnavailableError
from gateway.metrics import Children, Metrics

from .client import client_options, producer_reachable, start_producer

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 256 * 1024
# aiokafka's default max_request_size: one record (with its batch header) must fit in it.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# Below this a record cannot come near max_request_bytes; the exact size is left uncomputed.
_SIZE_CHECK_MARGIN = 1024


# How a record's caller hears of it: ``None`` once Kafka acknowledged the record, else the
# error; and the seconds from the record taken to that answer (0 for a failure).
Settle = Callable[[KafkaUnavailableError | None, float], None]


@dataclass(slots=True)
class _Batch:
    """One produce batch of a lane and the callers waiting for its acknowledgement."""

    builder: Any  # aiokafka.producer.message_accumulator.BatchBuilder
    settles: list[Settle] = field(default_factory=list)
    started: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Lane:
    """The batches of one partition: full ones waiting their turn, then the open one."""

    topic: str
    partition: int
    sealed: deque[_Batch] = field(default_factory=deque)
    open: _Batch | None = None
    draining: bool = False
    answered: asyncio.Future[None] | None = None  # the batch handed over, once Kafka answers

    def next_batch(self) -> _Batch | None:
        if self.sealed:
            return self.sealed.popleft()
        batch, self.open = self.open, None
        return batch


class BatchingPublisher:
    """A :class:`~gateway.kafka.records.Publisher` that packs concurrent publishes to a
    partition into one batch; returns once Kafka acknowledged the record (acks=all,
    idempotent producer)."""

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: Metrics,
        *,
        linger_ms: int = 0,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._latency = Children(metrics.kafka_publish_latency)
        self._errors = Children(metrics.kafka_publish_errors)
        self._partitioner = DefaultPartitioner()
        self._max_request_bytes = max_request_bytes
        self._producer = AIOKafkaProducer(
            **client_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
            max_request_size=max_request_bytes,
            partitioner=self._partitioner,
        )
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self._awaiting_metadata: dict[str, list[tuple[bytes | None, bytes, Settle]]] = {}
        self._stopping = False
        # Records taken and batches handed to the producer: their ratio is the batching.
        self.records = 0
        self.batches = 0

    async def start(self) -> None:
        await start_producer(self._producer)

    async def stop(self) -> None:
        """Refuse new records, hand over every record taken, wait for their answers, close."""
        self._stopping = True
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)
        await self._producer.stop()

    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now: a cheap check for readiness."""
        return await producer_reachable(self._producer)

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Return once Kafka acknowledged the record; :class:`KafkaUnavailableError` if not."""
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._take(topic, key, value, functools.partial(self._resolve, topic, answer))
        await answer

    async def enqueue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        acked: Callable[[KafkaUnavailableError | None], None],
    ) -> None:
        """Take the record without waiting for Kafka; ``acked`` is called with None once Kafka
        acknowledged it, or with the error when it cannot. Records taken in one order are
        appended to their partition in that order (as :meth:`publish` calls in that order)."""
        try:
            await self._take(topic, key, value, functools.partial(self._report, topic, acked))
        except KafkaUnavailableError as exc:
            acked(exc)

    def offer(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        """Take the record without awaiting anything; ``settle`` hears how it fared (maybe
        at once: a refused record). The seconds it is given are the record's whole wait,
        for the caller's own histogram (this publisher does not time offered records).

        While the topic's partitions are not known yet, offered records wait for them
        together, in order, and are appended when they are; records offered in one order
        are appended to their partition in that order."""
        waiting = self._awaiting_metadata.get(topic)
        if waiting is not None:
            waiting.append((key, value, settle))
        elif self._stopping:
            settle(KafkaUnavailableError(f"publish to {topic} refused: publisher stopping"), 0.0)
        else:
            self._offer_now(topic, key, value, settle)

    def _offer_now(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        try:
            partition = self._partition(topic, key)
            if partition is None:
                self._await_metadata(topic, key, value, settle)
                return
            self._admit(topic, partition, key, value, settle)
        except KafkaUnavailableError as exc:
            settle(exc, 0.0)

    async def _take(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        """Append the record to its partition's open batch; ``settle`` hears Kafka's answer
        for that batch."""
        if self._stopping:
            raise KafkaUnavailableError(f"publish to {topic} refused: the publisher is stopping")
        partition = self._partition(topic, key)
        if partition is None:
            partition = await self._partition_after_metadata(topic, key)
            if self._stopping:  # stop() began while this caller waited: nothing was taken
                raise KafkaUnavailableError(f"publish to {topic} refused: publisher stopping")
        self._admit(topic, partition, key, value, settle)

    def _admit(
        self, topic: str, partition: int, key: bytes | None, value: bytes, settle: Settle
    ) -> None:
        if len(value) + len(key or b"") > self._max_request_bytes - _SIZE_CHECK_MARGIN:
            self._check_size(topic, key, value)
        lane = self._lanes.get((topic, partition))
        if lane is None:
            lane = self._lanes[(topic, partition)] = _Lane(topic, partition)
        self._append(lane, key, value, settle)
        if not lane.draining:
            lane.draining = True
            self._spawn(self._drain(lane), f"publish-{topic}-{partition}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    def _await_metadata(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        """Hold offered records of ``topic`` until its partitions are known, then admit them
        in order (or fail them all)."""
        waiting = self._awaiting_metadata[topic] = [(key, value, settle)]

        async def admit_when_known() -> None:
            problem: KafkaUnavailableError | None = None
            try:
                await self._partition_after_metadata(topic, None)
            except KafkaUnavailableError as exc:
                problem = exc
            except Exception as exc:  # the task's root: the held callers must hear of it
                problem = KafkaUnavailableError(f"no metadata for {topic}: {exc!r}")
            except asyncio.CancelledError:
                problem = KafkaUnavailableError(f"publish to {topic} cancelled")
                raise
            finally:
                del self._awaiting_metadata[topic]
                # Taken when offered: admitted even if stop() began meanwhile (it waits).
                for held_key, held_value, held_settle in waiting:
                    if problem is None:
                        self._offer_now(topic, held_key, held_value, held_settle)
                    else:
                        held_settle(problem, 0.0)

        self._spawn(admit_when_known(), f"metadata-{topic}")

    def _append(self, lane: _Lane, key: bytes | None, value: bytes, settle: Settle) -> None:
        batch = lane.open
        if batch is None or batch.builder.append(timestamp=None, key=key, value=value) is None:
            if batch is not None:  # full: it waits its turn, a new one starts
                lane.sealed.append(batch)
            batch = lane.open = _Batch(self._producer.create_batch())
            # An empty batch takes a record of any size (the request limit was checked).
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                lane.open = None
                raise KafkaUnavailableError(f"publish to {lane.topic} refused: record not taken")
        self.records += 1
        batch.settles.append(settle)
        batch.started.append(time.perf_counter())

    async def _drain(self, lane: _Lane) -> None:
        """Hand the lane's batches to the producer in order until none is left."""
        loop = asyncio.get_running_loop()
        try:
            while (batch := lane.next_batch()) is not None:
                answered = lane.answered = loop.create_future()
                await self._hand_over(lane, batch)
                await answered
        finally:
            lane.draining = False
            lane.answered = None

    async def _hand_over(self, lane: _Lane, batch: _Batch) -> None:
        batch.builder.close()  # nothing else may join it once it is the producer's
        self.batches += 1
        try:
            delivery = await self._producer.send_batch(
                batch.builder, lane.topic, partition=lane.partition
            )
        except KafkaError as exc:
            self._fail(lane, batch, exc)
            return
        except Exception as exc:  # the task's root: its callers must not wait forever
            log.exception("handing a batch to the producer failed")
            self._fail(lane, batch, exc)
            return
        delivery.add_done_callback(functools.partial(self._settle, lane, batch))

    def _settle(self, lane: _Lane, batch: _Batch, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            self._fail(lane, batch, asyncio.CancelledError())
            return
        problem = delivery.exception()
        if problem is not None:
            self._fail(lane, batch, problem)
            return
        _answered(lane)
        now = time.perf_counter()
        for settle, started in zip(batch.settles, batch.started, strict=True):
            settle(None, now - started)

    def _fail(self, lane: _Lane, batch: _Batch, problem: BaseException) -> None:
        _answered(lane)
        topic = lane.topic
        self._errors(topic).inc(len(batch.settles))
        for settle in batch.settles:
            # One exception each: a shared one would collect every caller's traceback.
            failure = KafkaUnavailableError(f"publish to {topic} failed: {problem!r}")
            failure.__cause__ = problem
            settle(failure, 0.0)

    def _resolve(
        self,
        topic: str,
        answer: asyncio.Future[None],
        problem: KafkaUnavailableError | None,
        seconds: float,
    ) -> None:
        """Settle a :meth:`publish` caller's future (unless it stopped waiting)."""
        if problem is None:
            self._latency(topic).observe(seconds)
        if answer.done():
            return
        if problem is None:
            answer.set_result(None)
        else:
            answer.set_exception(problem)

    def _report(
        self,
        topic: str,
        acked: Callable[[KafkaUnavailableError | None], None],
        problem: KafkaUnavailableError | None,
        seconds: float,
    ) -> None:
        """Tell an :meth:`enqueue` caller how its record's batch fared."""
        if problem is None:
            self._latency(topic).observe(seconds)
        acked(problem)

    def _partition(self, topic: str, key: bytes | None) -> int | None:
        """The producer's choice of partition, or ``None`` while the topic's metadata is
        unknown."""
        cluster = self._producer.client.cluster
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            return None
        available = cluster.available_partitions_for_topic(topic) if key is None else None
        return int(self._partitioner(key, list(partitions), list(available or ())))

    async def _partition_after_metadata(self, topic: str, key: bytes | None) -> int:
        try:
            await self._producer.partitions_for(topic)
        except KafkaError as exc:
            self._errors(topic).inc()
            raise KafkaUnavailableError(f"no metadata for {topic}: {exc}") from exc
        partition = self._partition(topic, key)
        if partition is None:
            self._errors(topic).inc()
            raise KafkaUnavailableError(f"{topic} has no partitions")
        return partition

    def _check_size(self, topic: str, key: bytes | None, value: bytes) -> None:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        if size > self._max_request_bytes:
            # Refused alone: in a batch it would make the broker refuse its neighbours too.
            self._errors(topic).inc()
            raise KafkaUnavailableError(
                f"publish to {topic} refused: a record of {size} bytes exceeds "
                f"max_request_bytes {self._max_request_bytes}"
            )


def _answered(lane: _Lane) -> None:
    """Let the lane's drain hand over its next batch."""
    answered = lane.answered
    if answered is not None and not answered.done():
        answered.set_result(None)
