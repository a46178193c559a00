"""The sender: one result for every send request, nothing committed before it is durable.

For each record of the urgent or the bulk lane (:mod:`gateway.sender.lane`): skip it if its
request's outcome is already on Kafka (a redelivery after a crash, or a repeated
request_id); parse and validate it; compose the SUBMIT_SMs; wait for the previous record with
the same key to be submitted (:mod:`gateway.sender.ordering`); send every recipient
(:mod:`gateway.sender.submission`); publish exactly one result (and a dead letter for bad
input), retrying while Kafka is unavailable; only then mark the record done. Bulk records
are not started while urgent ones are in flight.

A crash can repeat a submit only for records in flight at that moment whose result had not
reached Kafka; :class:`~gateway.sender.exposure.Exposure` bounds those to the SMPP window.
Such a record comes back marked as a replay (:mod:`gateway.kafka.claims`), and the
provider's duplicate refusal of its resend ends it ``duplicate`` instead of being retried
(:mod:`gateway.sender.submission`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.compose import (
    BindProfile,
    ComposedMessage,
    CompositionError,
    CompositionSettings,
    compose_recipients,
)
from gateway.errors import (
    AbandonedError,
    KafkaRecordRefusedError,
    KafkaRefusedError,
    KafkaUnavailableError,
)
from gateway.events.dead_letter import Origin, dead_letter_event, dead_letter_key
from gateway.events.envelope import dumps, utc_now
from gateway.events.send_request import InvalidRequest, SendRequest, parse_send_request
from gateway.events.send_result import (
    ErrorInfo,
    RecipientOutcome,
    overall_outcome,
    send_result_event,
)
from gateway.kafka.records import ClaimingSource, Publisher, Record
from gateway.metrics import Children, Metrics
from gateway.settings import SenderSettings, TopicSettings
from gateway.shutdown import Shutdown

from .exposure import Exposure
from .lane import REVOKE_SECONDS, Flight, Handler, Lane
from .ordering import KeyOrder
from .outcomes import KnownOutcomes
from .submission import Submission

log = logging.getLogger(__name__)


class HttpSender(Protocol):
    """The provider's HTTP API as a transport (``gateway.http_api.sending.HttpTransport``)."""

    def available(self) -> bool: ...

    def stop(self) -> None: ...

    async def send(
        self, request: SendRequest, *, urgent: bool
    ) -> list[tuple[RecipientOutcome, int]]: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    event: dict[str, Any]


class Sender:
    """Resolves send requests from the urgent and the bulk lanes; see the module docstring."""

    def __init__(
        self,
        *,
        bulk: ClaimingSource,
        urgent: ClaimingSource,
        publisher: Publisher,
        submission: Submission,
        outcomes: KnownOutcomes,
        exposure: Exposure,
        http: HttpSender | None = None,
        settings: SenderSettings,
        profile: BindProfile,
        compose: CompositionSettings,
        topics: TopicSettings,
        metrics: Metrics,
        role: str = "sender",
        clock: Callable[[], datetime] = utc_now,
        shutdown: Shutdown | None = None,
    ) -> None:
        self._publisher = publisher
        self._submission = submission
        self._outcomes = outcomes
        self._exposure = exposure
        self._http = http
        self._settings = settings
        self._profile = profile
        self._compose = compose
        self._topics = topics
        self._metrics = metrics
        self._role = role
        self._clock = clock
        self._order = KeyOrder()
        self._running: dict[str, asyncio.Future[None]] = {}
        self._requests = Children(metrics.send_requests)
        self._results = Children(metrics.send_results)
        self._stopping = False
        self.shutdown = shutdown or Shutdown(settings.drain_timeout_seconds)
        self._stop_requested: asyncio.Event | None = None
        self._failure: KafkaRefusedError | None = None
        self.urgent = self._lane("urgent", urgent, self._urgent_record)
        self.bulk = self._lane("bulk", bulk, self._bulk_record)

    def _lane(self, name: str, source: ClaimingSource, handler: Handler) -> Lane:
        return Lane(
            name,
            source,
            handler,
            max_in_flight=self._settings.max_in_flight,
            fetch_max_records=self._settings.fetch_max_records,
            drain_timeout_seconds=self._settings.drain_timeout_seconds,
            revoke_timeout_seconds=REVOKE_SECONDS,
            shutdown=self.shutdown,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume both lanes until ``stop``; then finish in-flight requests and commit.

        A topic Kafka refuses for good stops the sender too, which then raises that error.
        """
        self._stop_requested = stop
        async with asyncio.TaskGroup() as group:
            group.create_task(self.urgent.run(stop))
            group.create_task(self.bulk.run(stop))
            committer = group.create_task(self._commit_loop())
            await stop.wait()
            self._stop()
            # The lanes drain what is in flight and commit on their own way out.
            committer.cancel()
        if self._failure is not None:
            raise self._failure

    def _halt(self, error: KafkaRefusedError) -> None:
        if self._failure is None and self._stop_requested is not None:
            log.error("sender stopping: %s", error)
            self._failure = error
            self._stop_requested.set()

    def _stop(self) -> None:
        """Start nothing new: records not started, and those waiting for exposure or a rate
        permit (nothing submitted yet), are left for redelivery at once."""
        self.shutdown.begin()
        self._stopping = True
        self.urgent.close()
        self.bulk.close()
        self._exposure.close(AbandonedError("shutting down"))
        self._submission.stop()
        if self._http is not None:
            self._http.stop()

    async def _urgent_record(self, flight: Flight) -> bool:
        self.bulk.admitting.clear()  # bulk waits while urgent requests are pending
        try:
            return await self._process(flight, urgent=True)
        finally:
            if self.urgent.in_flight <= 1:
                self.bulk.admitting.set()

    async def _bulk_record(self, flight: Flight) -> bool:
        return await self._process(flight, urgent=False)

    async def _process(self, flight: Flight, *, urgent: bool) -> bool:
        """Handle one record; True once its outcome is durable (its offset may be committed)."""
        self._metrics.in_flight.inc()
        try:
            return await self._process_counted(flight, urgent=urgent)
        finally:
            self._metrics.in_flight.dec()

    async def _process_counted(self, flight: Flight, *, urgent: bool) -> bool:
        record = flight.record
        self._requests(record.topic).inc()
        received_at = self._clock()
        parsed = parse_send_request(record.value)
        request_id = parsed.request_id
        if (
            request_id is not None
            and self._maybe_resolved(request_id)
            and await self._already_resolved(request_id)
        ):
            return True
        done = self._claim(request_id)
        try:
            # The exposure slot taken in _resolve is held until the result is on Kafka.
            async with contextlib.AsyncExitStack() as exposure:
                try:
                    outgoing = await self._resolve(flight, parsed, urgent, received_at, exposure)
                except (AbandonedError, asyncio.CancelledError):
                    raise
                except Exception as exc:  # the task root: whatever went wrong, the record ends
                    log.exception("request could not be processed (%s)", record.topic)
                    outgoing = self._internal_failure(record, parsed, exc, received_at)
                flight.finish_here()  # its outcome is decided: published here, not redone
                await self._publish_all(outgoing)
        except AbandonedError:
            log.info("request left for redelivery at shutdown (%s)", record.topic)
            return False
        finally:
            self._release(request_id, done)
        if request_id is not None:
            self._outcomes.add(request_id.encode(), self._clock().timestamp())
        return True

    def _maybe_resolved(self, request_id: str) -> bool:
        """Whether the request is running already or its outcome is known (the common
        answer, no, without a coroutine)."""
        return request_id in self._running or request_id.encode() in self._outcomes

    async def _already_resolved(self, request_id: str) -> bool:
        running = self._running.get(request_id)
        if running is not None:
            await asyncio.shield(running)
        if request_id.encode() in self._outcomes:
            self._metrics.send_skipped.labels("known_outcome").inc()
            return True
        return False

    def _claim(self, request_id: str | None) -> asyncio.Future[None] | None:
        if request_id is None:
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[request_id] = future
        return future

    def _release(self, request_id: str | None, done: asyncio.Future[None] | None) -> None:
        if request_id is None or done is None:
            return
        done.set_result(None)
        if self._running.get(request_id) is done:
            del self._running[request_id]

    async def _resolve(
        self,
        flight: Flight,
        parsed: SendRequest | InvalidRequest,
        urgent: bool,
        received_at: datetime,
        exposure: contextlib.AsyncExitStack,
    ) -> list[Outgoing]:
        record = flight.record
        if isinstance(parsed, InvalidRequest):
            return self._invalid(record, parsed, received_at)
        transport = self._transport_for(parsed)
        if transport is None:
            error = ErrorInfo("transport_unavailable", "the HTTP API is not configured")
            return [self._result(parsed, "rejected", received_at, error=error)]
        messages: Sequence[ComposedMessage] = ()
        if transport == "smpp":
            try:
                messages = compose_recipients(
                    parsed, self._profile, self._compose, priority=urgent, now=received_at
                )
            except CompositionError as exc:
                error = ErrorInfo(exc.code, str(exc))
                return [self._result(parsed, "rejected", received_at, error=error)]
        key = (record.topic, record.partition, record.key) if record.key is not None else None
        previous, turn = self._order.enter(key)
        try:
            if previous is not None:
                await previous
            # Taken after the key's turn: a record never holds slots its predecessor needs.
            weight = sum(m.part_count for m in messages) or len(parsed.recipients)
            await exposure.enter_async_context(self._exposure.hold(weight, urgent=urgent))
            if transport == "smpp":
                outcomes = await self._send_all(parsed, messages, urgent, flight)
            else:
                assert self._http is not None
                flight.finish_here()  # the HTTP transport may submit as soon as it is called
                outcomes = await self._http.send(parsed, urgent=urgent)
        finally:
            self._order.leave(key, turn)
        recipients = [outcome for outcome, _ in outcomes]
        attempts = sum(attempt for _, attempt in outcomes)
        outcome = overall_outcome(recipients)
        result = self._result(
            parsed,
            outcome,
            received_at,
            recipients=recipients,
            attempts=attempts,
            transport=transport,
        )
        return [result]

    def _transport_for(self, request: SendRequest) -> str | None:
        """smpp or http for this request; None when it asks for HTTP and there is none."""
        wanted = request.transport
        if wanted == "auto":
            wanted = self._settings.default_transport
            # An HTTP credential blocked or out of funds: SMPP carries the message meanwhile.
            if wanted == "http" and (self._http is None or not self._http.available()):
                wanted = "smpp"
        if wanted == "http" and self._http is None:
            return None
        return wanted

    async def _send_all(
        self,
        request: SendRequest,
        messages: Sequence[ComposedMessage],
        urgent: bool,
        flight: Flight,
    ) -> list[tuple[RecipientOutcome, int]]:
        sends = [
            self._submission.send(
                m.phone,
                request.text,
                m.parts,
                segments=m.segments,
                urgent=urgent,
                replay=flight.record.replay,
                submitting=flight.finish_here,
            )
            for m in messages
        ]
        if len(sends) == 1:
            return [await sends[0]]
        return list(await asyncio.gather(*sends))

    def _internal_failure(
        self,
        record: Record,
        parsed: SendRequest | InvalidRequest,
        exc: Exception,
        received_at: datetime,
    ) -> list[Outgoing]:
        """A bug must not block the partition: dead-letter the record, fail the request."""
        reason = f"{type(exc).__name__}: {exc}"
        out = self._invalid(record, InvalidRequest("internal_error", reason), received_at)
        if isinstance(parsed, SendRequest):
            error = ErrorInfo("internal_error", reason)
            out.append(self._result(parsed, "failed", received_at, error=error))
        return out

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
        out = [Outgoing(self._topics.dead_letter, dead_letter_key(record.key), dead)]
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
        transport: str = "smpp",
    ) -> Outgoing:
        self._results(outcome).inc()
        event = send_result_event(
            request_id=request.request_id,
            outcome=outcome,
            occurred_at=self._clock(),
            received_at=received_at,
            transport=transport if recipients else "none",
            recipients=recipients or (),
            error=error,
            tags=request.tags,
            attempts=attempts,
        )
        return Outgoing(self._topics.send_results, request.request_id.encode(), event)

    async def _publish_all(self, outgoing: list[Outgoing]) -> None:
        """Publish every event, retrying while Kafka is unavailable, until shutdown. What
        cannot succeed is not retried: an event Kafka refuses for good is left out (logged),
        a topic it refuses stops the sender with that error."""
        for item in outgoing:
            value = dumps(item.event)
            delay = self._settings.retry_initial_seconds
            while True:
                try:
                    await self._publisher.publish(item.topic, item.key, value)
                    break
                except KafkaRecordRefusedError as exc:
                    log.error("event left out, %s refuses it for good: %s", item.topic, exc)
                    break
                except KafkaRefusedError as exc:
                    self._halt(exc)
                    raise AbandonedError from exc
                except KafkaUnavailableError as exc:
                    if self._stopping:
                        raise AbandonedError from exc
                    log.warning("publishing to %s failed, retrying: %s", item.topic, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._settings.retry_max_seconds)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.commit_interval_seconds)
            await self.urgent.commit()
            await self.bulk.commit()
            self._outcomes.expire(self._clock().timestamp())
