"""The publishers' idempotent producer, replaced by a fresh one when its sequence breaks.

An idempotent producer numbers the batches of each partition; the broker stores a batch only
when its number follows the last one it stored from that producer. aiokafka numbers a batch
when it takes it for sending, so a batch that fails after that (expired while its partition
had no leader, or refused as too large) leaves a gap, and the broker then refuses every later
batch of that producer to the partition with OutOfOrderSequenceNumber, for good (see
:mod:`gateway.kafka.errors`). The remedy is the one the Java client applies: a new producer
id, whose sequences start again at zero.

:class:`ProducerSlot` holds the current producer and its *generation*. A publisher reports a
failure with the generation of the producer that failed (:meth:`ProducerSlot.broken`); the
first report for the current generation replaces it, later ones are about a producer already
retired and change nothing. Until the new producer has its id, :meth:`ProducerSlot.acquire`
waits (bounded by the caller); while Kafka is down the replacement is tried again every
``retry_seconds``. The retired producer is closed in the background: what it still holds is
flushed (batches of healthy partitions are stored, the others fail) and what is left after
``close_timeout_seconds`` is failed, so no caller waits on it forever. Callers then publish
what failed again; a record stored twice carries the same ``event_id`` both times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gateway.errors import KafkaUnavailableError

log = logging.getLogger(__name__)

# How long stop() lets a producer flush what it holds before failing the rest.
CLOSE_TIMEOUT_SECONDS = 5.0
# Once what it held is failed, how long a producer may take to close its connections.
_ABANDON_AFTER_SECONDS = 1.0
# Between attempts to start a replacement producer while no broker answers.
RETRY_SECONDS = 0.5

ProducerFactory = Callable[[], AIOKafkaProducer]


async def start_producer(producer: AIOKafkaProducer, timeout_seconds: float) -> None:
    """Start ``producer`` (bootstrap and producer id) within ``timeout_seconds``;
    :class:`KafkaUnavailableError`, with nothing left open, if it cannot."""
    try:
        async with asyncio.timeout(timeout_seconds):
            await producer.start()
    except BaseException as exc:  # cancelled too: what start() opened is closed either way
        await close_producer(producer, timeout_seconds)
        if isinstance(exc, KafkaError | TimeoutError):
            raise KafkaUnavailableError(f"producer could not start: {exc!r}") from exc
        raise


async def close_producer(producer: AIOKafkaProducer, timeout_seconds: float) -> None:
    """Flush and close ``producer``; after ``timeout_seconds`` fail what it still holds, and
    give it one more second to close before abandoning it.

    aiokafka's ``stop()`` waits for every batch, and an idempotent producer retries a batch
    for as long as its leader is unreachable: with no broker it would wait for ever.
    """
    closing = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait([closing], timeout=timeout_seconds)
    if not done:
        # The one way to end the flush from outside: fail every batch the accumulator still
        # holds (aiokafka does the same when its sender task dies). stop() then completes.
        producer._message_accumulator.fail_all(
            KafkaUnavailableError(f"producer closed after {timeout_seconds:.0f} s")
        )
        done, _ = await asyncio.wait([closing], timeout=_ABANDON_AFTER_SECONDS)
    if not done:
        log.error("a Kafka producer did not close; abandoned")
        closing.cancel()
        return
    with contextlib.suppress(KafkaError):
        closing.result()


class ProducerSlot:
    """The current producer of a publisher, and its replacement; see the module docstring."""

    def __init__(
        self,
        make: ProducerFactory,
        *,
        start_timeout_seconds: float,
        retry_seconds: float = RETRY_SECONDS,
        on_replaced: Callable[[str], None] | None = None,
    ) -> None:
        self._make = make
        self._start_timeout = start_timeout_seconds
        self._retry = retry_seconds
        self._on_replaced = on_replaced
        self._producer: AIOKafkaProducer | None = None
        self._installed = asyncio.Event()
        self._replacing: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.generation = 0

    @property
    def producer(self) -> AIOKafkaProducer | None:
        """The producer new records go to; None while it is being replaced."""
        return self._producer

    async def start(self) -> None:
        """Start the first producer; :class:`KafkaUnavailableError` if no broker lets it."""
        producer = self._make()
        await start_producer(producer, self._start_timeout)
        self._install(producer)

    async def acquire(self, timeout_seconds: float) -> tuple[int, AIOKafkaProducer]:
        """The current (generation, producer), waiting up to ``timeout_seconds`` for one."""
        if self._producer is None and not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_seconds):
                    await self._installed.wait()
        if self._producer is None:
            raise KafkaUnavailableError("no Kafka producer: it is being replaced or stopped")
        return self.generation, self._producer

    def broken(self, generation: int, problem: BaseException) -> None:
        """The producer of ``generation`` failed a batch (or stopped): replace it, once."""
        if generation != self.generation or self._producer is None or self._stopping:
            return
        log.warning(
            "Kafka producer %d replaced: a batch failed after it was numbered (%r)",
            generation,
            problem,
        )
        if self._on_replaced is not None:
            self._on_replaced(type(problem).__name__)
        self._retire(self._producer)
        self._producer = None
        self._installed.clear()
        self._replacing = asyncio.create_task(self._replace(), name="kafka-producer-replace")

    async def reachable(self, timeout_seconds: float) -> bool:
        """Whether a broker answers the current producer's metadata request in time (False
        while there is no producer)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            async with asyncio.timeout(timeout_seconds):
                return bool(await producer.client.force_metadata_update())
        except (KafkaError, TimeoutError):
            return False

    async def stop(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Flush and close the producer and any retired one, together within
        ``timeout_seconds`` and a second; records still held then fail."""
        self._stopping = True
        self._installed.set()  # acquire() waits no more
        if self._replacing is not None:
            self._replacing.cancel()
            await asyncio.gather(self._replacing, return_exceptions=True)
        closing = [close_producer(self._producer, timeout_seconds)] if self._producer else []
        self._producer = None
        await asyncio.gather(*closing, *self._retiring, return_exceptions=True)

    async def _replace(self) -> None:
        while not self._stopping:
            producer = self._make()
            try:
                await start_producer(producer, self._start_timeout)
            except KafkaUnavailableError as exc:
                log.warning("replacement Kafka producer not started, retrying: %s", exc)
                await asyncio.sleep(self._retry)
                continue
            self._install(producer)
            return

    def _install(self, producer: AIOKafkaProducer) -> None:
        self.generation += 1
        self._producer = producer
        self._installed.set()

    def _retire(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.create_task(close_producer(producer, CLOSE_TIMEOUT_SECONDS))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
