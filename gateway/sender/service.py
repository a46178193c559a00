"""The sender's intake: one result for every send request, nothing committed before it is
durable.

For each record of the urgent or the bulk lane (:mod:`gateway.sender.lane`): skip it if its
request's outcome is already on Kafka (a redelivery after a crash, or a repeated
request_id); parse and validate it; decide what to do with it and carry that out
(:mod:`gateway.sender.dispatch`: composition, per-key order, the exposure bound, the
submits); publish exactly one result (and a dead letter for bad input), retrying while Kafka
is unavailable; only then mark the record done. Bulk records are not started while urgent
ones are in flight.

The usual request (one recipient, one part, nothing to wait for) has no task: the lane's
start hook (:meth:`Sender._start`) parses and decides it and, if
:meth:`~gateway.sender.dispatch.Dispatch.start` sends its submit at once, the answer's
callback ends it: an ESME_ROK through the same steps the task would take
(:meth:`Dispatch.answered`, the result offered); anything else, or a cancel, goes on in the
general path's coroutine (:meth:`Sender._finish`, in a task) from where the request stands.
Any other record goes to its task with what the start learned (not parsed twice).

A request's one result is offered to the publisher, and the record is finished from the
publisher's acknowledgement (exposure given back, outcome remembered, offset committable):
no task waits for Kafka's answer. Only a result Kafka did not take is retried, in a task of
its own.

A crash can repeat a submit only for records in flight at that moment whose result had not
reached Kafka; :class:`~gateway.sender.exposure.Exposure` bounds those to the SMPP window.
Such a record comes back marked as a replay (:mod:`gateway.kafka.claims`), and the
provider's duplicate refusal of its resend ends it ``duplicate`` instead of being retried
(:mod:`gateway.sender.submission`).

Counters of requests and results are kept here and added to Prometheus at every commit
tick (and at the end), not per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, NamedTuple

from gateway.backoff import Backoff, Jitter
from gateway.errors import (
    AbandonedError,
    GatewayError,
    KafkaRecordRefusedError,
    KafkaRefusedError,
    KafkaUnavailableError,
)
from gateway.events.dead_letter import Origin, dead_letter_event, dead_letter_key
from gateway.events.envelope import dumps, utc_now
from gateway.events.send_request import InvalidRequest, SendRequest, parse_send_request
from gateway.events.send_result import ErrorInfo, send_result_event
from gateway.kafka.records import ClaimingSource, OfferingPublisher, Record
from gateway.metrics import Children, Metrics
from gateway.settings import SenderSettings, TopicSettings
from gateway.shutdown import Shutdown

from .decision import Plan, Refusal, refusal_event, result_of
from .dispatch import Dispatch, Outcomes, Started
from .lane import REVOKE_SECONDS, Flight, Handler, Lane
from .outcomes import KnownOutcomes

log = logging.getLogger(__name__)


class Outgoing(NamedTuple):
    """An event to publish (one or two per request: made per request, so a plain tuple)."""

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
        publisher: OfferingPublisher,
        outcomes: KnownOutcomes,
        dispatch: Dispatch,
        settings: SenderSettings,
        topics: TopicSettings,
        metrics: Metrics,
        role: str = "sender",
        clock: Callable[[], datetime] = utc_now,
        wall_clock: Callable[[], float] = time.time,
        shutdown: Shutdown | None = None,
    ) -> None:
        self._publisher = publisher
        self._outcomes = outcomes
        self._dispatch = dispatch
        self._settings = settings
        self._topics = topics
        self._metrics = metrics
        self._role = role
        self._clock = clock
        # Known outcomes are kept by wall-clock seconds, as the results follower reads them
        # (Kafka timestamps): a float per result, not a datetime turned into one.
        self._wall_clock = wall_clock
        # Request ids being processed, by the record processing them; and a future for the
        # records with the same id waiting for it to end (made when one comes).
        self._running: dict[str, Flight] = {}
        self._running_ends: dict[str, asyncio.Future[None]] = {}
        # Counted here, added to Prometheus by _flush_counts.
        self._requested: dict[str, int] = {}
        self._resulted: dict[str, int] = {}
        # Offered results are timed here (the publisher times only what it is awaited for).
        self._publish_latency = Children(metrics.kafka_publish_latency)
        # Kafka is down rather than busy: never retry much sooner than the doubling says.
        self._publish_backoff = Backoff(
            settings.retry_initial_seconds, settings.retry_max_seconds, jitter=Jitter.EQUAL
        )
        self._rng = random.Random()
        self._stopping = False
        self.shutdown = shutdown or Shutdown(settings.drain_timeout_seconds)
        self._stop_requested: asyncio.Event | None = None
        self._failure: KafkaRefusedError | None = None
        self.urgent = self._lane("urgent", urgent, urgent=True)
        self.bulk = self._lane("bulk", bulk, urgent=False)
        # Bulk waits while urgent requests are pending.
        self.urgent.on_busy = self.bulk.admitting.clear
        self.urgent.on_idle = self.bulk.admitting.set
        metrics.in_flight.set_function(lambda: self.urgent.in_flight + self.bulk.in_flight)

    def _lane(self, name: str, source: ClaimingSource, *, urgent: bool) -> Lane:
        handler: Handler = functools.partial(self._process, urgent=urgent)
        return Lane(
            name,
            source,
            handler,
            starter=functools.partial(self._start, urgent=urgent),
            max_in_flight=self._settings.max_in_flight,
            fetch_max_records=self._settings.fetch_max_records,
            drain_timeout_seconds=self._settings.drain_timeout_seconds,
            revoke_timeout_seconds=REVOKE_SECONDS,
            shutdown=self.shutdown,
            slots=self._dispatch.exposure,
            urgent=urgent,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume both lanes until ``stop``; then finish in-flight requests and commit.

        A topic Kafka refuses for good stops the sender too, which then raises that error.
        """
        self._stop_requested = stop
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.urgent.run(stop))
                group.create_task(self.bulk.run(stop))
                committer = group.create_task(self._commit_loop())
                await stop.wait()
                self._stop()
                # The lanes drain what is in flight and commit on their own way out.
                committer.cancel()
        finally:
            self._flush_counts()
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
        self._dispatch.stop()

    def _start(self, flight: Flight, *, urgent: bool) -> bool:
        """The lane's start hook: parse and decide, and carry the usual request (see the
        module docstring) without a task of its own: True once its submit is sent. False,
        with nothing taken, leaves the record to :meth:`_process`, with what was learned."""
        received_at = self._clock()
        parsed = parse_send_request(flight.record.value)
        begun = flight.note = _Begun(parsed, received_at)
        if not isinstance(parsed, SendRequest):
            return False
        request_id = parsed.request_id
        if request_id in self._running or request_id.encode() in self._outcomes:
            return False
        try:
            plan = begun.plan = self._dispatch.decide(parsed, urgent=urgent, now=received_at)
        except Exception:  # decided again, and answered, by _process
            return False
        if isinstance(plan, Refusal):
            return False
        started = self._dispatch.start(plan, flight, urgent=urgent)
        if started is None:
            return False
        flight.note = None
        record = flight.record
        requested = self._requested
        requested[record.topic] = requested.get(record.topic, 0) + 1
        self._running[request_id] = flight
        flight.waiting = started.pending
        answered = functools.partial(self._answered, flight, begun, plan, started, urgent)
        started.pending.future.add_done_callback(answered)
        return True

    def _answered(
        self,
        flight: Flight,
        begun: _Begun,
        plan: Plan,
        started: Started,
        urgent: bool,
        _: object,
    ) -> None:
        """The answer to a submit :meth:`_start` sent: ESME_ROK ends the request here as
        :meth:`_finish` would; anything else goes on in :meth:`_finish`, in a task, from
        where the request stands."""
        if not started.pending.ok():
            flight.carry_on(self._finish(flight, begun, urgent, started))
            return
        flight.waiting = None
        parsed = begun.parsed
        assert isinstance(parsed, SendRequest)
        weight = 0
        try:
            outcomes, weight = self._dispatch.answered(plan, flight, started)
            outgoing = [self._concluded(parsed, plan, outcomes, begun.received_at)]
        except Exception as exc:  # as in _resolve
            log.exception("request could not be processed (%s)", flight.record.topic)
            outgoing = self._internal_failure(flight.record, parsed, exc, begun.received_at)
        publishing = self._publish(flight, parsed.request_id, weight, outgoing)
        if publishing is not None:
            flight.carry_on(publishing)

    async def _process(self, flight: Flight, *, urgent: bool) -> bool | None:
        """Handle one record: True once its outcome is durable (its offset may be
        committed), False if it is left for redelivery, None once its result is with the
        publisher (the acknowledgement ends the record)."""
        record = flight.record
        requested = self._requested
        requested[record.topic] = requested.get(record.topic, 0) + 1
        begun = flight.note
        if isinstance(begun, _Begun):  # parsed and perhaps decided by _start
            flight.note = None
        else:
            received_at = self._clock()
            begun = _Begun(parse_send_request(record.value), received_at)
        request_id = begun.parsed.request_id
        if request_id is not None:
            if request_id in self._running or request_id.encode() in self._outcomes:
                if flight.held:  # not kept while waiting (see gateway.sender.lane)
                    self._dispatch.exposure.release(flight.take_held())
                if await self._already_resolved(request_id):
                    return True
            self._running[request_id] = flight
        return await self._finish(flight, begun, urgent)

    async def _finish(
        self, flight: Flight, begun: _Begun, urgent: bool, started: Started | None = None
    ) -> bool | None:
        """:meth:`_process` once the request is its record's: resolve and publish.
        ``started``: the submit :meth:`_start` sent, answered other than ESME_ROK."""
        request_id = begun.parsed.request_id
        try:
            outgoing, weight = await self._resolve(flight, begun, urgent, started)
        except AbandonedError:
            self._release(request_id, flight)
            log.info("request left for redelivery at shutdown (%s)", flight.record.topic)
            return False
        except BaseException:
            self._release(request_id, flight)
            raise
        publishing = self._publish(flight, request_id, weight, outgoing)
        return None if publishing is None else await publishing

    def _publish(
        self, flight: Flight, request_id: str | None, weight: int, outgoing: list[Outgoing]
    ) -> Coroutine[Any, Any, bool] | None:
        """Publish the record's events: one is offered (None: the acknowledgement ends the
        record); several are published in order by the coroutine returned."""
        flight.finish_here()  # its outcome is decided: published here, not redone
        if len(outgoing) == 1:
            _Publishing(self, flight, request_id, weight, outgoing[0]).offer()
            return None
        return self._publish_in_order(flight, request_id, weight, outgoing)

    async def _resolve(
        self, flight: Flight, begun: _Begun, urgent: bool, started: Started | None
    ) -> tuple[list[Outgoing], int]:
        """What to publish for the record, and the exposure weight it holds until then."""
        record = flight.record
        parsed, received_at = begun.parsed, begun.received_at
        weight = 0
        try:
            if isinstance(parsed, InvalidRequest):
                return self._invalid(record, parsed, received_at), 0
            plan = begun.plan
            if plan is None:
                plan = self._dispatch.decide(parsed, urgent=urgent, now=received_at)
            if isinstance(plan, Refusal):
                event = refusal_event(
                    parsed, plan, received_at=received_at, occurred_at=self._clock()
                )
                return [self._result(parsed.request_id, "rejected", event)], 0
            outcomes, weight = await self._dispatch.send(
                plan, flight, urgent=urgent, started=started
            )
            return [self._concluded(parsed, plan, outcomes, received_at)], weight
        except (AbandonedError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the task root: whatever went wrong, the record ends
            log.exception("request could not be processed (%s)", record.topic)
            return self._internal_failure(record, parsed, exc, received_at), weight

    def _concluded(
        self, parsed: SendRequest, plan: Plan, outcomes: Outcomes, received_at: datetime
    ) -> Outgoing:
        """The request's result from its recipients' outcomes."""
        outcome, event = result_of(
            parsed, outcomes, plan.transport, received_at=received_at, occurred_at=self._clock()
        )
        return self._result(parsed.request_id, outcome, event)

    async def _already_resolved(self, request_id: str) -> bool:
        if request_id in self._running:
            ended = self._running_ends.get(request_id)
            if ended is None:
                ended = self._running_ends[request_id] = asyncio.get_running_loop().create_future()
            await asyncio.shield(ended)
        if request_id.encode() in self._outcomes:
            self._metrics.send_skipped.labels("known_outcome").inc()
            return True
        return False

    def _release(self, request_id: str | None, flight: Flight) -> None:
        if request_id is None:
            return
        if self._running.get(request_id) is flight:
            del self._running[request_id]
            ended = self._running_ends.pop(request_id, None)
            if ended is not None and not ended.done():
                ended.set_result(None)

    def _published(self, flight: Flight, request_id: str | None, weight: int) -> None:
        """The record's events are on Kafka: give back its exposure, remember its outcome,
        and end it."""
        if weight:
            self._dispatch.exposure.release(weight)
        if request_id is not None:
            self._outcomes.add(request_id.encode(), self._wall_clock())
        self._release(request_id, flight)
        flight.end(True)

    def _abandoned(self, flight: Flight, request_id: str | None, weight: int) -> None:
        """The record's result could not be published: it is left for redelivery."""
        if weight:
            self._dispatch.exposure.release(weight)
        self._release(request_id, flight)
        flight.end(False)

    async def _publish_in_order(
        self, flight: Flight, request_id: str | None, weight: int, outgoing: list[Outgoing]
    ) -> bool:
        """Publish the events one after the other (a dead letter before its result)."""
        try:
            await self._publish_all(outgoing)
        except AbandonedError:
            self._abandoned(flight, request_id, weight)
            log.info("request left for redelivery at shutdown (%s)", flight.record.topic)
            return False
        except BaseException:
            self._abandoned(flight, request_id, weight)
            raise
        self._published(flight, request_id, weight)
        return True

    async def _publish_later(
        self,
        flight: Flight,
        request_id: str | None,
        weight: int,
        item: Outgoing,
        error: KafkaUnavailableError,
    ) -> None:
        """Retry an offered result Kafka did not take (the record's task now)."""
        log.warning("publishing to %s failed, retrying: %s", item.topic, error)
        try:
            await asyncio.sleep(self._publish_backoff.delay(0, self._rng))
            await self._publish_all([item])
        except AbandonedError:
            self._abandoned(flight, request_id, weight)
            log.info("request left for redelivery at shutdown (%s)", flight.record.topic)
            return
        except BaseException:
            self._abandoned(flight, request_id, weight)
            raise
        self._published(flight, request_id, weight)

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
            event = send_result_event(
                request_id=parsed.request_id,
                outcome="failed",
                occurred_at=self._clock(),
                received_at=received_at,
                transport="none",
                error=ErrorInfo("internal_error", reason),
                tags=parsed.tags,
            )
            out.append(self._result(parsed.request_id, "failed", event))
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
            out.append(self._result(invalid.request_id, "rejected", result))
        return out

    def _result(self, request_id: str, outcome: str, event: dict[str, Any]) -> Outgoing:
        resulted = self._resulted
        resulted[outcome] = resulted.get(outcome, 0) + 1
        return Outgoing(self._topics.send_results, request_id.encode(), event)

    async def _publish_all(self, outgoing: list[Outgoing]) -> None:
        """Publish every event, retrying while Kafka is unavailable (the backoff from
        ``retry_initial_seconds`` to ``retry_max_seconds``, equal jitter), until shutdown. What
        cannot succeed is not retried: an event Kafka refuses for good is left out (logged),
        a topic it refuses stops the sender with that error."""
        for item in outgoing:
            value = dumps(item.event)
            attempt = 0
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
                    await asyncio.sleep(self._publish_backoff.delay(attempt, self._rng))
                    attempt += 1

    def _flush_counts(self) -> None:
        """Add the requests and results counted since the last flush to Prometheus."""
        for counts, metric in (
            (self._requested, self._metrics.send_requests),
            (self._resulted, self._metrics.send_results),
        ):
            for label, count in counts.items():
                if count:
                    metric.labels(label).inc(count)
            counts.clear()

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.commit_interval_seconds)
            self._flush_counts()
            await self.urgent.commit()
            await self.bulk.commit()
            self._outcomes.expire(self._wall_clock())


class _Begun:
    """What :meth:`Sender._start` learned of a record: its request, when it was received,
    and the plan for it once decided."""

    __slots__ = ("parsed", "plan", "received_at")

    def __init__(self, parsed: SendRequest | InvalidRequest, received_at: datetime) -> None:
        self.parsed = parsed
        self.received_at = received_at
        self.plan: Plan | Refusal | None = None


class _Publishing:
    """A record's one result, offered to the publisher; the record ends from its answer."""

    __slots__ = ("_flight", "_item", "_request_id", "_sender", "_weight")

    def __init__(
        self,
        sender: Sender,
        flight: Flight,
        request_id: str | None,
        weight: int,
        item: Outgoing,
    ) -> None:
        self._sender = sender
        self._flight = flight
        self._request_id = request_id
        self._weight = weight
        self._item = item

    def offer(self) -> None:
        item = self._item
        self._sender._publisher.offer(item.topic, item.key, dumps(item.event), self.settle)

    def settle(self, problem: GatewayError | None, seconds: float) -> None:
        sender = self._sender
        if problem is None:
            sender._publish_latency(self._item.topic).observe(seconds)
            sender._published(self._flight, self._request_id, self._weight)
        elif isinstance(problem, KafkaRecordRefusedError):
            log.error("event left out, %s refuses it for good: %s", self._item.topic, problem)
            sender._published(self._flight, self._request_id, self._weight)
        elif isinstance(problem, KafkaRefusedError):
            sender._halt(problem)
            sender._abandoned(self._flight, self._request_id, self._weight)
        elif isinstance(problem, KafkaUnavailableError) and not sender._stopping:
            retry = sender._publish_later(
                self._flight, self._request_id, self._weight, self._item, problem
            )
            self._flight.task = asyncio.create_task(retry)
        else:
            sender._abandoned(self._flight, self._request_id, self._weight)
