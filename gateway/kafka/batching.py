"""Publishing in micro-batches: many concurrent publishes, one produce batch per partition.

:class:`KafkaPublisher` hands every record to ``AIOKafkaProducer.send()``, which for each one
waits on metadata, serializes, partitions, appends to the accumulator and creates a future
that the producer resolves with the record's metadata. When hundreds of callers publish at
once (webhook callbacks, DELIVER_SMs), most of that is the same work repeated.
:class:`BatchingPublisher` keeps the same promise (``publish`` returns once Kafka
acknowledged the record, acks=all, idempotent producer) with less work per record:

- each (topic, partition) has a *lane*. A record is appended to the lane's open batch (an
  aiokafka ``BatchBuilder``) and its caller waits on a future of its own;
- one hand-over task hands the open batches of every lane that has one to ``send_batch()``
  on the next turn of the event loop, together, so everything published during this turn
  goes out in one produce request per broker. Until Kafka has answered a lane's previous
  batch, its next batch keeps filling: the batches grow with the load, and a lone record
  leaves at once. (The idempotent producer has one produce request in flight per broker,
  so a batch handed over earlier would only wait in its accumulator, and ``send_batch()``
  would wait with a timer per batch for room there.) Lanes answered by one produce
  response are handed over again together, by one task, with one look for the producer;
- the batch's acknowledgement settles every caller in it: all succeed, or all fail with
  the same kind of error (:mod:`gateway.kafka.errors`); a caller not answered within the
  delivery timeout (and at most a sweep interval more) is failed on its own, the rest of
  its batch still waiting.

What stays as with ``send()``:

- Partitioning: the producer's own partitioner picks the partition: murmur2 of the key, as
  the Java client and aiokafka's ``DefaultPartitioner`` (:mod:`gateway.kafka.partitioning`,
  the same function at half the cost), a random available partition without a key;
  so keyed records land where any other writer of the topic puts them.
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
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
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
from .partitioning import KeyPartitioner
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
    handed_over: _Batch | None = None  # the batch with the producer, until it is answered
    queued: bool = False  # waiting for the hand-over task with its next batch

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
        self._partitioner = KeyPartitioner()
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
        # Each topic's partitions, sorted, as the current producer's metadata has them last.
        self._partitions: dict[str, list[int]] = {}
        self._cluster: Any = None  # the metadata they are from (aiokafka's ClusterMetadata)
        self._ready: list[_Lane] = []  # lanes with a batch to hand over, none with Kafka
        self._handing_over: asyncio.Task[None] | None = None  # hands the ready lanes' over
        self._metadata_waits: set[asyncio.Task[None]] = set()
        self._unanswered = 0  # batches begun and not yet acknowledged or failed
        self._emptied: asyncio.Future[None] | None = None  # stop() waits for the last answer
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
        deadline = loop.time() + timeout_seconds  # one allowance for the answers and the close
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._all_answered()
        tasks = [*self._metadata_waits, self._handing_over]
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*filter(None, tasks), return_exceptions=True)
        for lane in self._lanes.values():
            while (batch := lane.next_batch()) is not None:
                self._fail(lane, batch, KafkaUnavailableError("the publisher stopped"))
        await self._kafka.stop(max(0.0, deadline - loop.time()))
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def _all_answered(self) -> None:
        """Return once every record taken (those waiting for metadata too) is answered."""
        while True:
            if self._metadata_waits:
                await asyncio.wait(set(self._metadata_waits))
            elif self._unanswered:
                self._emptied = asyncio.get_running_loop().create_future()
                await self._emptied
            else:
                return

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
        if lane.handed_over is None and not lane.queued:
            self._queue(lane)

    def _queue(self, lane: _Lane) -> None:
        """Have the lane's next batch handed over on the next turn of the event loop."""
        lane.queued = True
        self._ready.append(lane)
        if self._handing_over is None:
            self._handing_over = asyncio.create_task(self._hand_over_ready())

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

        task = asyncio.create_task(admit_when_known(), name=f"metadata-{topic}")
        self._metadata_waits.add(task)
        task.add_done_callback(self._metadata_waits.discard)

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
            self._unanswered += 1
        self.records += 1
        batch.settles.append(settle)
        batch.started.append(time.perf_counter())

    async def _hand_over_ready(self) -> None:
        """Hand the queued lanes' next batches to the producer, round after round, until no
        lane waits: the lanes queued in one turn of the event loop leave together."""
        try:
            while self._ready:
                lanes, self._ready = self._ready, []
                batches = []
                for lane in lanes:
                    lane.queued = False
                    batch = lane.next_batch()
                    if batch is not None:
                        batch.builder.close()  # nothing else may join it once it is the producer's
                        lane.handed_over = batch
                        batches.append((lane, batch))
                self.batches += len(batches)
                await self._hand_over(batches)
        finally:
            self._handing_over = None

    async def _hand_over(self, batches: list[tuple[_Lane, _Batch]]) -> None:
        """Give each batch to the producer; a batch it does not take is failed at once."""
        try:
            generation, producer = await self._kafka.acquire(self._kafka.deadline())
        except KafkaUnavailableError as exc:  # no producer in time
            for lane, batch in batches:
                self._fail(lane, batch, exc)
            return
        except asyncio.CancelledError:
            self._not_handed_over(batches)
            raise
        for index, (lane, batch) in enumerate(batches):
            try:
                delivery = await producer.send_batch(
                    batch.builder, lane.topic, partition=lane.partition
                )
            except asyncio.CancelledError:
                self._not_handed_over(batches[index:])
                raise
            except KafkaError as exc:
                self._fail(lane, batch, self._kafka.send_failed(lane.topic, generation, exc), True)
            except Exception as exc:  # the task's root: its callers must not wait forever
                log.exception("handing a batch to the producer failed")
                self._fail(lane, batch, exc)
            else:
                delivery.add_done_callback(functools.partial(self._settle, lane, generation, batch))

    def _not_handed_over(self, batches: list[tuple[_Lane, _Batch]]) -> None:
        """stop() gave up on handing these batches over."""
        for lane, batch in batches:
            self._fail(lane, batch, KafkaUnavailableError("the publisher stopped"))

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
        self._answered(lane, batch)
        now = time.perf_counter()
        self._kafka.health.delivered(time.monotonic())
        for settle, started in batch.waiting():
            settle(None, now - started)

    def _fail(
        self, lane: _Lane, batch: _Batch, problem: BaseException, counted: bool = False
    ) -> None:
        self._answered(lane, batch)
        topic = lane.topic
        waiting = batch.waiting()
        if not counted:
            self._kafka.failed(topic, publish_error(topic, problem), len(waiting))
        for settle, _ in waiting:
            # One exception each: a shared one would collect every caller's traceback.
            settle(publish_error(topic, problem), 0.0)

    def _answered(self, lane: _Lane, batch: _Batch) -> None:
        """A batch is acknowledged or failed: the lane's next batch may go."""
        self._unanswered -= 1
        if lane.handed_over is batch:
            lane.handed_over = None
            if (lane.sealed or lane.open is not None) and not lane.queued:
                self._queue(lane)
        emptied = self._emptied
        if not self._unanswered and emptied is not None and not emptied.done():
            emptied.set_result(None)

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
        if cluster is not self._cluster:  # a new producer: watch its metadata
            self._cluster = cluster
            self._partitions.clear()
            cluster.add_listener(self._metadata_updated)
        partitions = self._partitions.get(topic)
        if partitions is None:
            known = cluster.partitions_for_topic(topic)
            if not known:
                return None
            partitions = self._partitions[topic] = sorted(known)
        if key is not None:
            return self._partitioner(key, partitions, ())
        available = cluster.available_partitions_for_topic(topic)
        return self._partitioner(None, partitions, list(available or ()))

    def _metadata_updated(self, cluster: Any) -> None:
        """The producer's metadata changed: the partitions are looked up again."""
        if cluster is self._cluster:
            self._partitions.clear()

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


def _new_builder(kafka: ManagedProducer) -> Any:
    """An empty aiokafka ``BatchBuilder``; any producer's serves (none is tied to it)."""
    producer = kafka.slot.producer
    if producer is None:
        raise KafkaUnavailableError("no Kafka producer: it is being replaced")
    return producer.create_batch()
