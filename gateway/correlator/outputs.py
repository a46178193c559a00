"""Producing what the correlator's stages output, and completing records once Kafka has it.

Everything a worker produces (route records, status events, dead letters, changelog records)
goes through one producer, faust's own (:class:`Sends`): one producer makes one produce
request carry every topic's batch, where a producer per kind of output made several small
requests per round trip. It is called directly (``ProducerT.send``, which hands the record to
aiokafka and returns its future), not through faust's ``send_soon`` and its buffer task, and
every record's future is watched for Kafka's answer.

An input record is *completed* (acked to faust, or its offset committed by the route stage)
only once Kafka acknowledged every record it produced, and every record taken before it was
completed (:class:`~gateway.correlator.acks.InOrderAcks`). The agents iterate their streams
with ``noack()``, so faust never acks an event on its own: not when the agent moves on, not
when it is cancelled at shutdown, not when it raises.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import GatewayError, KafkaUnavailableError
from gateway.events.envelope import dumps

from .acks import InOrderAcks
from .records import Channel, Step

T = TypeVar("T")

# Records taken and not yet acknowledged before a stage waits for Kafka: bounds the memory a
# slow broker can make a worker hold.
MAX_IN_FLIGHT = 20_000
DRAIN_SECONDS = 30.0

Settle = Callable[[GatewayError | None], None]
Stored = Callable[[Any], None]  # called with the record's metadata (topic_partition, offset)


class Producer(Protocol):
    """The producer the outputs use: faust's ``ProducerT`` has this ``send``."""

    async def send(  # noqa: PLR0917 - faust's positional signature
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> Awaitable[Any]: ...


class Sends:
    """Hands records to the producer and reports Kafka's answer for each."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        settle: Settle,
        *,
        partition: int | None = None,
        stored: Stored | None = None,
    ) -> None:
        """Send one record (to ``partition``, or by its key); ``settle`` is called once with
        None when Kafka acknowledged it (after ``stored``, with its metadata), or the error."""
        try:
            sent = await self._producer.send(topic, key, value, partition, None, None)
        except Exception as exc:  # translated for the caller, which stops the worker on it
            settle(KafkaUnavailableError(f"produce to {topic} failed: {exc!r}"))
            return
        # aiokafka's send returns its delivery future; a test double may return an awaitable.
        delivery = asyncio.ensure_future(sent)
        delivery.add_done_callback(functools.partial(_answered, topic, settle, stored))


def _answered(topic: str, settle: Settle, stored: Stored | None, sent: asyncio.Future[Any]) -> None:
    if sent.cancelled() or sent.exception() is not None:
        problem = "cancelled" if sent.cancelled() else repr(sent.exception())
        settle(KafkaUnavailableError(f"produce to {topic} failed: {problem}"))
        return
    if stored is not None:
        stored(sent.result())
    settle(None)


class StepOutputs(Generic[T]):
    """Publishes each step's outputs and completes its record in order once they are acked."""

    def __init__(
        self, sends: Sends, topics: Mapping[Channel, str], complete: Callable[[T], None]
    ) -> None:
        self.sends = sends
        self._topics = dict(topics)
        self.acks: InOrderAcks[T] = InOrderAcks(complete)

    def take(self, item: T, records: int) -> Settle:
        """Track ``item`` until ``records`` records of its are acknowledged; raises once an
        earlier output failed. The returned callable settles one record."""
        if self.acks.failure is not None:
            raise self.acks.failure
        return self.acks.take(item, records).settle

    async def publish(self, step: Step, settle: Settle) -> None:
        """Hand over the status events and dead letters of a step."""
        send, topics = self.sends.send, self._topics
        for out in step.outbound:
            await send(topics[out.channel], out.key, dumps(out.document), settle)

    async def throttle(self) -> None:
        """Back-pressure: wait for Kafka while too many records are unacknowledged."""
        if len(self.acks) > MAX_IN_FLIGHT:
            await self.acks.below(MAX_IN_FLIGHT, DRAIN_SECONDS)
