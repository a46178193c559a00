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
  the same kind of error (:mod:`gateway.kafka.errors`); a caller not answered within the
  delivery timeout (and at most a sweep interval more) is failed on its own, the rest of
  its batch still waiting.

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
A batch the broker refuses as a whole fails all its callers (for good only when it held just
the one record), and leaves a gap in the producer's sequence, as any batch failed after the
producer took it: the producer is then replaced (:mod:`gateway.kafka.managed`).
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

from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from gateway.errors import GatewayError, KafkaRecordRefusedError, KafkaUnavailableError
from gateway.metrics import Children, Metrics
from gateway.settings import KafkaSettings

from .client import client_options
from .errors import RECORD_REFUSALS, publish_error
from .health import PROBE_INTERVAL_SECONDS
from .managed import ManagedProducer, delivery_problem
from .partitioner import JavaPartitioner
from .producers import CLOSE_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 256 * 1024
# aiokafka's default max_request_size: one record (with its batch header) must fit in it.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# Below this a record cannot come near max_request_bytes; the exact size is left uncomputed.
_SIZE_CHECK_MARGIN = 1024


# How a record's caller hears of it: ``None`` once Kafka acknowledged the record, else the
# error; and the seconds from the record taken to that answer (0 for a failure).
Settle = Callable[[GatewayError | None, float], None]
# The most a caller waits past its delivery timeout: how often unanswered records are looked
# at (a fraction of the timeout, at most this).
_SWEEP_SECONDS = 1.0


@dataclass(slots=True)
class _Batch:
    """One produce batch of a lane and the callers waiting for its acknowledgement."""

    builder: Any  # aiokafka.producer.message_accumulator.BatchBuilder
    settles: list[Settle] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    # The first records, failed when their delivery timeout passed (records are appended in
    # time order, so the ones past their deadline are always the first ones).
    given_up: int = 0

    def give_up(self, topic: str, taken_before: float, seconds: float) -> None:
        """Fail the callers of the records taken before ``taken_before`` (perf_counter)."""
        started, settles = self.started, self.settles
        while self.given_up < len(started) and started[self.given_up] <= taken_before:
            late = KafkaUnavailableError(
                f"publish to {topic}: no acknowledgement within {seconds:g} s"
            )
            settles[self.given_up](late, 0.0)
            self.given_up += 1

    def waiting(self) -> list[tuple[Settle, float]]:
        """The callers not given up on, with when their record was taken."""
        given_up = self.given_up
        return list(zip(self.settles[given_up:], self.started[given_up:], strict=True))


@dataclass(slots=True)
class _Lane:
    """The batches of one partition: full ones waiting their turn, then the open one."""

    topic: str
    partition: int
    sealed: deque[_Batch] = field(default_factory=deque)
    open: _Batch | None = None
    draining: bool = False
    answered: asyncio.Future[None] | None = None  # the batch handed over, once Kafka answers
    handed_over: _Batch | None = None  # the batch with the producer, until it is answered

    def next_batch(self) -> _Batch | None:
        if self.sealed:
            return self.sealed.popleft()
        batch, self.open = self.open, None
        return batch


class BatchingPublisher:
    """A :class:`~gateway.kafka.records.Publisher` that packs concurrent publishes to a
    partition into one batch; returns once Kafka acknowledged the record (acks=all,
    idempotent producer), at the latest after the delivery timeout."""

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
        self._partitioner = JavaPartitioner()
        self._max_request_bytes = max_request_bytes
        self._kafka = ManagedProducer(
            settings,
            metrics,
            client_options(settings),
            linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
            max_request_size=max_request_bytes,
            partitioner=self._partitioner,
        )
        self.health = self._kafka.health
        self._timeout = settings.delivery_timeout_seconds
        self._sweeper: asyncio.TimerHandle | None = None
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self._awaiting_metadata: dict[str, list[tuple[bytes | None, bytes, Settle]]] = {}
        self._stopping = False
        # Records taken and batches handed to the producer: their ratio is the batching.
        self.records = 0
        self.batches = 0

    async def start(self) -> None:
        await self._kafka.start()
        self._schedule_sweep()

    async def stop(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Refuse new records, hand over every record taken, wait for their answers, close;
        what is not acknowledged within ``timeout_seconds`` (and a second) fails."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds  # one allowance for the drains and the close
        if self._drains:
            await asyncio.wait(set(self._drains), timeout=timeout_seconds)
        for drain in self._drains:
            drain.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        for lane in self._lanes.values():
            while (batch := lane.next_batch()) is not None:
                self._fail(lane, batch, KafkaUnavailableError("the publisher stopped"))
        await self._kafka.stop(max(0.0, deadline - loop.time()))
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now: a cheap check for readiness."""
        return await self._kafka.slot.reachable(PROBE_INTERVAL_SECONDS)

    async def probe(self) -> None:
        """Ask the brokers whether they answer; the outcome goes to :attr:`health`."""
        await self._kafka.probe()

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Return once Kafka acknowledged the record; :class:`KafkaUnavailableError` (or a
        :class:`~gateway.errors.KafkaRefusedError`) if not."""
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._take(topic, key, value, functools.partial(self._resolve, topic, answer))
        await answer

    async def enqueue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        acked: Callable[[GatewayError | None], None],
    ) -> None:
        """Take the record without waiting for Kafka; ``acked`` is called with None once Kafka
        acknowledged it, or with the error when it cannot. Records taken in one order are
        appended to their partition in that order (as :meth:`publish` calls in that order)."""
        try:
            await self._take(topic, key, value, functools.partial(self._report, topic, acked))
        except GatewayError as exc:
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
        except GatewayError as exc:
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
            problem: GatewayError | None = None
            try:
                await self._partition_after_metadata(topic, None)
            except GatewayError as exc:
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
            batch = lane.open = _Batch(_new_builder(self._kafka))
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
        lane.handed_over = batch
        try:
            generation, producer = await self._kafka.acquire(self._kafka.deadline())
            delivery = await producer.send_batch(
                batch.builder, lane.topic, partition=lane.partition
            )
        except KafkaUnavailableError as exc:  # no producer in time
            self._fail(lane, batch, exc)
            return
        except asyncio.CancelledError:  # stop() gave up on handing it over
            self._fail(lane, batch, KafkaUnavailableError("the publisher stopped"))
            raise
        except KafkaError as exc:
            self._fail(lane, batch, self._kafka.send_failed(lane.topic, generation, exc), True)
            return
        except Exception as exc:  # the task's root: its callers must not wait forever
            log.exception("handing a batch to the producer failed")
            self._fail(lane, batch, exc)
            return
        delivery.add_done_callback(functools.partial(self._settle, lane, generation, batch))

    def _settle(
        self, lane: _Lane, generation: int, batch: _Batch, delivery: asyncio.Future[Any]
    ) -> None:
        problem = delivery_problem(delivery)
        if problem is not None:
            waiting = len(batch.settles) - batch.given_up
            self._kafka.delivery_failed(lane.topic, generation, problem, waiting)
            if len(batch.settles) > 1 and isinstance(problem, RECORD_REFUSALS):
                # Refused as a whole: the topic takes less than max_batch_bytes. Each record
                # might fit alone, so none of them is refused for good.
                problem = KafkaUnavailableError(f"a batch too large for {lane.topic}: {problem!r}")
            self._fail(lane, batch, problem, True)
            return
        _answered(lane, batch)
        now = time.perf_counter()
        self._kafka.health.delivered(time.monotonic())
        for settle, started in batch.waiting():
            settle(None, now - started)

    def _fail(
        self, lane: _Lane, batch: _Batch, problem: BaseException, counted: bool = False
    ) -> None:
        _answered(lane, batch)
        topic = lane.topic
        waiting = batch.waiting()
        if not counted:
            self._kafka.failed(topic, publish_error(topic, problem), len(waiting))
        for settle, _ in waiting:
            # One exception each: a shared one would collect every caller's traceback.
            settle(publish_error(topic, problem), 0.0)

    def _schedule_sweep(self) -> None:
        interval = min(_SWEEP_SECONDS, self._timeout / 10)
        self._sweeper = asyncio.get_running_loop().call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Fail the callers whose delivery timeout passed, in every batch not answered yet:
        the open and sealed ones of each lane and the one with the producer."""
        taken_before = time.perf_counter() - self._timeout
        for lane in self._lanes.values():
            batches = [lane.handed_over, *lane.sealed, lane.open]
            for batch in batches:
                if batch is not None:
                    batch.give_up(lane.topic, taken_before, self._timeout)
        self._schedule_sweep()

    def _resolve(
        self,
        topic: str,
        answer: asyncio.Future[None],
        problem: GatewayError | None,
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
        acked: Callable[[GatewayError | None], None],
        problem: GatewayError | None,
        seconds: float,
    ) -> None:
        """Tell an :meth:`enqueue` caller how its record's batch fared."""
        if problem is None:
            self._latency(topic).observe(seconds)
        acked(problem)

    def _partition(self, topic: str, key: bytes | None) -> int | None:
        """The producer's choice of partition, or ``None`` while the topic's metadata (or a
        producer) is not there yet."""
        producer = self._kafka.slot.producer
        if producer is None:
            return None
        cluster = producer.client.cluster
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            return None
        available = cluster.available_partitions_for_topic(topic) if key is None else None
        return int(self._partitioner(key, list(partitions), list(available or ())))

    async def _partition_after_metadata(self, topic: str, key: bytes | None) -> int:
        deadline = self._kafka.deadline()
        try:
            _, producer = await self._kafka.acquire(deadline)
            async with asyncio.timeout_at(deadline):
                await producer.partitions_for(topic)
        except (KafkaError, TimeoutError, KafkaUnavailableError) as exc:
            error = publish_error(topic, exc)
            self._kafka.failed(topic, error)
            raise error from exc
        partition = self._partition(topic, key)
        if partition is None:
            error = KafkaUnavailableError(f"{topic} has no partitions")
            self._kafka.failed(topic, error)
            raise error
        return partition

    def _check_size(self, topic: str, key: bytes | None, value: bytes) -> None:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        if size > self._max_request_bytes:
            # Refused alone: in a batch it would make the broker refuse its neighbours too.
            error = KafkaRecordRefusedError(
                f"publish to {topic} refused: a record of {size} bytes exceeds "
                f"max_request_bytes {self._max_request_bytes}"
            )
            self._kafka.failed(topic, error)
            raise error


def _answered(lane: _Lane, batch: _Batch) -> None:
    """Let the lane's drain hand over its next batch."""
    if lane.handed_over is batch:
        lane.handed_over = None
    answered = lane.answered
    if answered is not None and not answered.done():
        answered.set_result(None)


def _new_builder(kafka: ManagedProducer) -> Any:
    """An empty aiokafka ``BatchBuilder``; any producer's serves (none is tied to it)."""
    producer = kafka.slot.producer
    if producer is None:
        raise KafkaUnavailableError("no Kafka producer: it is being replaced")
    return producer.create_batch()
