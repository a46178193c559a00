"""What both publishers keep around their producer: its replacement when the idempotent
sequence breaks, a bound on every wait for Kafka, readiness, and the metrics of every outcome.

:class:`~gateway.kafka.client.KafkaPublisher` (a record at a time) and
:class:`~gateway.kafka.batching.BatchingPublisher` (batches of its own) differ only in how
they hand records over; what a delivery's outcome means is decided here, once:

- acknowledged: the publisher is healthy;
- failed after the producer took it: the producer's sequence has a gap, the producer is
  replaced (:mod:`gateway.kafka.producers`), and the error is sorted
  (:mod:`gateway.kafka.errors`) for the callers, who publish it again when that can help;
- not acknowledged within the delivery timeout: the callers hear so and may try again (the
  record may still be stored later: repeats carry the same ``event_id``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from gateway.errors import GatewayError, KafkaRecordRefusedError, KafkaUnavailableError
from gateway.metrics import Children, Metrics
from gateway.settings import KafkaSettings

from .deadlines import DeliveryDeadlines
from .errors import publish_error, send_breaks_producer
from .health import PROBE_INTERVAL_SECONDS, PublishHealth
from .producers import CLOSE_TIMEOUT_SECONDS, ProducerSlot


class ManagedProducer:
    """An idempotent, acks=all producer kept usable; see the module docstring."""

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: Metrics,
        connection: dict[str, Any],
        **options: Any,
    ) -> None:
        """``connection``: the options of every client (``client.client_options``);
        ``options``: the producer's own (linger, batch sizes, partitioner)."""
        self.timeout_seconds = settings.delivery_timeout_seconds
        self._probe_timeout = min(settings.request_timeout_seconds, PROBE_INTERVAL_SECONDS)
        self._latency = Children(metrics.kafka_publish_latency)
        self._errors = Children(metrics.kafka_publish_errors)
        replacements = metrics.kafka_producer_replacements
        self.slot = ProducerSlot(
            functools.partial(
                AIOKafkaProducer,
                **connection,
                acks="all",
                enable_idempotence=True,
                **options,
            ),
            start_timeout_seconds=settings.request_timeout_seconds,
            on_replaced=lambda error: replacements.labels(error).inc(),
        )
        self.deadlines = DeliveryDeadlines(self.timeout_seconds)
        self.health = PublishHealth()

    async def start(self) -> None:
        await self.slot.start()

    async def stop(self, timeout_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        await self.slot.stop(timeout_seconds)
        self.deadlines.close()

    def deadline(self) -> float:
        """The event-loop time by which a record handed over now must be acknowledged."""
        return asyncio.get_running_loop().time() + self.timeout_seconds

    async def acquire(self, deadline: float) -> tuple[int, AIOKafkaProducer]:
        """The current (generation, producer), waiting for a replacement until ``deadline``;
        :class:`KafkaUnavailableError` (not counted: the caller knows for how many records)."""
        return await self.slot.acquire(deadline - asyncio.get_running_loop().time())

    async def probe(self) -> None:
        """Ask the brokers whether they answer; the outcome goes to :attr:`health`."""
        ok = await self.slot.reachable(self._probe_timeout)
        self.health.probed(time.monotonic(), ok)

    def delivered(self, topic: str, waited: list[float]) -> None:
        """Records acknowledged, each having waited the given seconds."""
        self.health.delivered(time.monotonic())
        latency = self._latency(topic)
        for seconds in waited:
            latency.observe(seconds)

    def send_failed(self, topic: str, generation: int, problem: BaseException) -> GatewayError:
        """``send()`` or ``send_batch()`` raised ``problem``: the caller's error."""
        if send_breaks_producer(problem):
            self.slot.broken(generation, problem)
        error = publish_error(topic, problem)
        self.failed(topic, error)
        return error

    def delivery_failed(
        self, topic: str, generation: int, problem: BaseException, records: int = 1
    ) -> None:
        """A delivery of the producer of ``generation`` ended with ``problem``."""
        if not isinstance(problem, GatewayError):  # a failed batch, not our own timeout
            self.slot.broken(generation, problem)
        self.failed(topic, publish_error(topic, problem), records)

    def failed(self, topic: str, error: GatewayError, records: int = 1) -> None:
        self._errors(topic).inc(records)
        if not isinstance(error, KafkaRecordRefusedError):  # one bad record says nothing
            self.health.failed(time.monotonic(), str(error))


def delivery_problem(delivery: asyncio.Future[Any]) -> BaseException | None:
    """The exception a settled delivery ended with (a cancelled one: its producer closed)."""
    if delivery.cancelled():
        return KafkaUnavailableError("the producer closed before Kafka acknowledged")
    return delivery.exception()
