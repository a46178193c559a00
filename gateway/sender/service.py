"""The sender pipeline: send requests from Kafka, submits to the provider, results to Kafka.

For each record: parse and validate; compose one SUBMIT_SM per recipient; submit them,
retrying what the provider or the link says is temporary; publish exactly one result (and,
for bad input, a dead letter); only then mark the record done. The consumer's offset moves
past a record only when every record before it in its partition is done as well
(:class:`~gateway.sender.offsets.OffsetTracker`), so nothing is acknowledged before its
outcome is durable. A record whose outcome cannot be published before shutdown is left
uncommitted and will be processed again; the provider may then see its submits twice, which
is bounded by the in-flight window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from gateway.config import SenderSettings, SmppSettings, TopicSettings
from gateway.errors import GatewayError, KafkaUnavailableError
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.envelope import dumps, utc_now
from gateway.events.send_request import InvalidRequest, SendRequest, parse_send_request
from gateway.events.send_result import (
    ErrorInfo,
    RecipientOutcome,
    overall_outcome,
    send_result_event,
)
from gateway.kafka.records import Partition, Publisher, Record, RecordSource
from gateway.metrics import Children, Metrics
from gateway.smpp.constants import status_name
from gateway.smpp.errors import CommandStatusError
from gateway.smpp.pdu import SubmitSm, SubmitSmResp
from gateway.smpp.receipt import normalize_message_id

from .compose import CompositionError, compose_submit
from .offsets import OffsetTracker

log = logging.getLogger(__name__)


class Submitter(Protocol):
    async def submit(self, pdu: SubmitSm) -> SubmitSmResp:
        """The provider's answer; raises a typed SMPP error when it is not ESME_ROK."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    event: dict[str, Any]


class Sender:
    """Consumes send requests and resolves each one; see the module docstring."""

    def __init__(
        self,
        *,
        source: RecordSource,
        publisher: Publisher,
        submitter: Submitter,
        settings: SenderSettings,
        smpp: SmppSettings,
        topics: TopicSettings,
        metrics: Metrics,
        role: str = "sender",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._source = source
        self._publisher = publisher
        self._submitter = submitter
        self._settings = settings
        self._smpp = smpp
        self._topics = topics
        self._metrics = metrics
        self._requests = Children(metrics.send_requests)
        self._results = Children(metrics.send_results)
        self._role = role
        self._clock = clock
        self._tracker: OffsetTracker[Partition] = OffsetTracker()
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._progress = asyncio.Event()
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish in-flight requests and commit."""
        async with asyncio.TaskGroup() as group:
            committer = group.create_task(self._commit_loop())
            workers: set[asyncio.Task[None]] = set()
            while not stop.is_set():
                for record in await self._source.fetch(0.2, self._settings.fetch_max_records):
                    await self._slots.acquire()
                    self._tracker.track(record.source, record.offset)
                    self._metrics.in_flight.inc()
                    task = group.create_task(self._process(record))
                    workers.add(task)
                    task.add_done_callback(workers.discard)
            await self._drain(workers)
            committer.cancel()
        await self._commit()

    async def on_revoked(self, partitions: set[Partition]) -> None:
        """Before a rebalance takes partitions away: finish their records and commit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.drain_timeout_seconds
        while any(self._tracker.pending(p) for p in partitions) and loop.time() < deadline:
            self._progress.clear()
            await asyncio.wait([asyncio.ensure_future(self._progress.wait())], timeout=0.5)
        await self._commit()
        self._tracker.forget(partitions)

    # -- one record --------------------------------------------------------------------

    async def _process(self, record: Record) -> None:
        try:
            outgoing = await self._resolve(record)
            await self._publish_all(outgoing)
            self._tracker.complete(record.source, record.offset)
        except _AbandonedError:
            log.warning(
                "outcome of %s:%d:%d not stored before shutdown; it will be redelivered",
                record.topic,
                record.partition,
                record.offset,
            )
        finally:
            self._slots.release()
            self._metrics.in_flight.dec()
            self._progress.set()

    async def _resolve(self, record: Record) -> list[Outgoing]:
        received_at = self._clock()
        self._requests(record.topic).inc()
        parsed = parse_send_request(record.value)
        if isinstance(parsed, InvalidRequest):
            return self._invalid(record, parsed, received_at)
        priority = record.topic == self._topics.send_priority
        try:
            submits = [
                compose_submit(parsed, phone, self._smpp, priority=priority, now=received_at)
                for phone in parsed.recipients
            ]
        except CompositionError as exc:
            error = ErrorInfo(exc.code, str(exc))
            return [self._result(parsed, "rejected", received_at, error=error)]
        outcomes = await asyncio.gather(
            *(
                self._submit(pdu, phone)
                for pdu, phone in zip(submits, parsed.recipients, strict=True)
            )
        )
        recipients = [outcome for outcome, _ in outcomes]
        attempts = max(attempt for _, attempt in outcomes)
        outcome = overall_outcome(recipients)
        return [
            self._result(parsed, outcome, received_at, recipients=recipients, attempts=attempts)
        ]

    async def _submit(self, pdu: SubmitSm, phone: str) -> tuple[RecipientOutcome, int]:
        """One recipient's submit; temporary failures are retried with backoff and jitter."""
        attempts = 1
        try:
            try:
                response = await self._submitter.submit(pdu)
            except GatewayError as first:
                if not first.retriable:
                    raise
                # The retry machinery is built only when needed: it costs more than a submit.
                self._count_retry_of(first)
                response, attempts = await self._retry(pdu)
        except CommandStatusError as exc:
            status = "failed" if exc.retriable else "rejected"
            error = ErrorInfo(status_name(exc.command_status).lower(), str(exc), exc.command_status)
            return RecipientOutcome(phone, status, error=error), attempts
        except GatewayError as exc:
            error = ErrorInfo("retries_exhausted", f"{type(exc).__name__}: {exc}")
            return RecipientOutcome(phone, "failed", error=error), attempts
        message_id = normalize_message_id(response.message_id)
        return RecipientOutcome(phone, "accepted", (message_id,)), attempts

    async def _retry(self, pdu: SubmitSm) -> tuple[SubmitSmResp, int]:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retriable),
            wait=wait_exponential_jitter(
                initial=self._settings.retry_initial_seconds, max=self._settings.retry_max_seconds
            ),
            stop=stop_any(
                stop_after_delay(self._settings.give_up_after_seconds), _StopWhen(self._is_stopping)
            ),
            before_sleep=self._count_retry,
            reraise=True,
        )
        attempts = 1
        # The first attempt failed outside the loop, whose first try would come at once.
        await asyncio.sleep(self._settings.retry_initial_seconds)
        async for attempt in retrying:
            with attempt:
                attempts += 1
                response = await self._submitter.submit(pdu)
        return response, attempts

    def _is_stopping(self) -> bool:
        return self._stopping

    def _count_retry(self, state: RetryCallState) -> None:
        if state.outcome is not None:
            self._count_retry_of(state.outcome.exception())

    def _count_retry_of(self, error: BaseException | None) -> None:
        if isinstance(error, CommandStatusError):
            reason = status_name(error.command_status)
        else:
            reason = type(error).__name__
        self._metrics.send_retries.labels(reason).inc()

    def _invalid(
        self, record: Record, invalid: InvalidRequest, received_at: datetime
    ) -> list[Outgoing]:
        self._metrics.dead_letters.labels(invalid.code).inc()
        origin = Origin("kafka", record.topic, record.partition, record.offset)
        dead = dead_letter_event(
            role=self._role,
            origin=origin,
            reason_code=invalid.code,
            reason=invalid.message,
            key=record.key,
            value=record.value,
            occurred_at=received_at,
        )
        out = [Outgoing(self._topics.dead_letter, record.key, dead)]
        if invalid.request_id is not None:
            error = ErrorInfo(invalid.code, invalid.message)
            result = send_result_event(
                request_id=invalid.request_id,
                outcome="rejected",
                occurred_at=self._clock(),
                received_at=received_at,
                transport="none",
                error=error,
            )
            out.append(Outgoing(self._topics.send_results, invalid.request_id.encode(), result))
            self._results("rejected").inc()
        return out

    def _result(
        self,
        request: SendRequest,
        outcome: str,
        received_at: datetime,
        *,
        error: ErrorInfo | None = None,
        recipients: list[RecipientOutcome] | None = None,
        attempts: int = 0,
    ) -> Outgoing:
        self._results(outcome).inc()
        event = send_result_event(
            request_id=request.request_id,
            outcome=outcome,
            occurred_at=self._clock(),
            received_at=received_at,
            transport="smpp" if recipients else "none",
            recipients=recipients or (),
            error=error,
            tags=request.tags,
            attempts=attempts,
        )
        return Outgoing(self._topics.send_results, request.request_id.encode(), event)

    # -- durability ----------------------------------------------------------------------

    async def _publish_all(self, outgoing: list[Outgoing]) -> None:
        """Publish every event, retrying while Kafka is unavailable, until shutdown."""
        for item in outgoing:
            value = dumps(item.event)
            delay = self._settings.retry_initial_seconds
            while True:
                try:
                    await self._publisher.publish(item.topic, item.key, value)
                    break
                except KafkaUnavailableError as exc:
                    if self._stopping:
                        raise _AbandonedError from exc
                    log.warning("publishing to %s failed, retrying: %s", item.topic, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._settings.retry_max_seconds)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.commit_interval_seconds)
            await self._commit()

    async def _commit(self) -> None:
        offsets = self._tracker.committable()
        if not offsets:
            return
        try:
            await self._source.commit(offsets)
        except KafkaUnavailableError as exc:
            log.warning("offset commit failed, will retry: %s", exc)
            return
        self._tracker.committed(offsets)

    async def _drain(self, workers: Collection[asyncio.Task[None]]) -> None:
        if not workers:
            return
        _, late = await asyncio.wait(list(workers), timeout=self._settings.drain_timeout_seconds)
        self._stopping = True
        if late:
            log.warning("%d requests still in flight after the drain timeout", len(late))
            await asyncio.wait(late, timeout=self._settings.drain_timeout_seconds)
            for task in late:
                task.cancel()


class _StopWhen(stop_base):
    """Stops retrying as soon as ``predicate`` holds (the sender is shutting down)."""

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate()


class _AbandonedError(Exception):
    """A record's outcome could not be stored before shutdown; it stays uncommitted."""


def _is_retriable(error: BaseException) -> bool:
    return isinstance(error, GatewayError) and error.retriable
