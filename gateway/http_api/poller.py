"""``smsc-gateway poller``: reconciliation by status queries, and the balance as a metric.

- The pending set (:mod:`.pending`) is rebuilt at start from the last ``max_age_seconds`` of
  ``smsc.send-results.v1`` and ``smsc.dlr.v1`` and kept up to date by following them.
- Every ``interval_seconds`` (the provider allows one multi-id status query a minute) up to
  ``batch_size`` messages without a final report for ``min_age_seconds`` are queried in one
  request; each answer whose status changed since the last poll is published on
  ``smsc.dlr.v1`` as ``smsc.dlr/1`` with ``source: poll`` (key: the message id). A final
  answer ends the message's tracking; others are asked again after ``repoll_seconds``.
- balance.php is queried every ``balance_interval_seconds`` (the client keeps it under the
  provider's 10 a minute) into ``smsc_http_balance``.
- with ``incoming_enabled``, new incoming SMS are fetched by get.php?get_answers=1 and
  published on ``smsc.incoming.v1`` (:mod:`.incoming_poll`), the cursor kept on Kafka.
- with ``call_confirm.enabled``, requests to confirm a phone by call are given numbers by
  wait_call.php and their outcomes decided (:mod:`gateway.callconfirm`).
- with ``optout.keywords``, incoming SMS that are an opt-out keyword put their phone on the
  provider's blacklist (:mod:`gateway.optout`), through the same client.

Run one poller per credential: the status limits are the login's, not the process's.

At shutdown a round in progress gets until the drain deadline (5 s of its own: a round cut
short is asked again by the next process) and closing the clients until the close deadline
(:mod:`gateway.shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.callconfirm.runner import CallConfirmParts, build_call_confirm
from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError, KafkaUnavailableError
from gateway.events.delivery import dlr_event
from gateway.events.envelope import dumps, utc_now
from gateway.kafka.client import KafkaPublisher
from gateway.kafka.cursor import CursorTopic, KafkaCursorStore
from gateway.kafka.follow import TopicsReader
from gateway.kafka.records import Publisher
from gateway.metrics import Metrics
from gateway.optout.runner import OptOutRunner, build_optout
from gateway.roles.probes import Readiness, role_probes
from gateway.shutdown import STEP_DRAIN_SECONDS, Shutdown

from .client import SmscHttpClient
from .errors import HttpApiError
from .incoming_poll import IncomingPoller
from .metrics import HttpApiMetrics
from .pending import PendingMessage, PendingSet, PendingTracker
from .replies import MessageStatus
from .reports import poll_report
from .settings import PollerSettings

log = logging.getLogger(__name__)


class Reconciler:
    """Queries the provider about pending messages and publishes what it answers."""

    def __init__(
        self,
        client: SmscHttpClient,
        pending: PendingSet,
        publisher: Publisher,
        *,
        dlr_topic: str,
        settings: PollerSettings,
        metrics: HttpApiMetrics,
        clock: Callable[[], float] = time.time,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._pending = pending
        self._publisher = publisher
        self._dlr_topic = dlr_topic
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_stat: dict[tuple[str, str], str] = {}

    async def run(self, stop: asyncio.Event, ready: Callable[[], Awaitable[None]]) -> None:
        """Poll every ``interval_seconds`` until ``stop``, from when ``ready()`` returns."""
        if not await until_stopped(stop, ready()):
            return
        while not stop.is_set():
            try:
                await self.poll_once()
            except KafkaUnavailableError as exc:
                log.warning("poll round not published, retrying next round: %s", exc)
            await until_stopped(stop, asyncio.sleep(self._settings.interval_seconds))

    async def poll_once(self) -> int:
        """One round: one status query for what is due; returns the reports published."""
        due = self._pending.take_due(self._clock(), self._settings.batch_size)
        self._metrics.poller_pending.set(len(self._pending))
        self._forget_finished()
        if not due:
            return 0
        try:
            statuses = await self._client.statuses([(e.message_id, e.phone) for e in due])
        except HttpApiError as exc:
            log.warning("status query of %d messages failed: %s", len(due), exc)
            self._pending.returned(due)
            return 0
        return await self._publish_all(due, match(due, statuses))

    async def _publish_all(
        self, due: list[PendingMessage], answers: dict[tuple[str, str], MessageStatus]
    ) -> int:
        published = 0
        for position, entry in enumerate(due):
            answer = answers.get(entry.key)
            try:
                published += await self._publish(entry, answer)
            except KafkaUnavailableError:
                self._pending.returned(due[position:])
                raise
        return published

    async def _publish(self, entry: PendingMessage, answer: MessageStatus | None) -> int:
        if answer is None:  # not in the answer: ask again later
            self._pending.polled(entry, final=False, now=self._clock())
            return 0
        report = poll_report(answer, self._wall_clock())
        changed = self._last_stat.get(entry.key) != report.stat
        if changed:
            event = dlr_event(report)
            await self._publisher.publish(self._dlr_topic, report.message_id.encode(), dumps(event))
            self._metrics.poller_reports(report.status).inc()
        self._pending.polled(entry, final=report.final, now=self._clock())
        if report.final:
            self._last_stat.pop(entry.key, None)
        else:
            self._last_stat[entry.key] = report.stat
        return int(changed)

    def _forget_finished(self) -> None:
        # Entries that left the set another way (a final report, eviction, age).
        for key in [k for k in self._last_stat if k not in self._pending]:
            del self._last_stat[key]


def match(
    due: Sequence[PendingMessage], statuses: Sequence[MessageStatus]
) -> dict[tuple[str, str], MessageStatus]:
    """Each due entry's answer, by (id, phone); by id alone where the provider wrote the phone
    differently and the id is unique in the batch. Answers carry the entry's phone."""
    by_key = {(s.message_id, s.phone): s for s in statuses}
    ids = Counter(e.message_id for e in due)
    by_id = {s.message_id: s for s in statuses if ids[s.message_id] == 1}
    found: dict[tuple[str, str], MessageStatus] = {}
    for entry in due:
        answer = by_key.get(entry.key) or by_id.get(entry.message_id)
        if answer is not None:
            found[entry.key] = dataclasses.replace(answer, phone=entry.phone)
    return found


async def watch_balance(
    client: SmscHttpClient, interval_seconds: float, stop: asyncio.Event
) -> None:
    """Query the balance every ``interval_seconds`` until ``stop`` (the client sets the gauge)."""
    while not stop.is_set():
        try:
            await client.balance()
        except HttpApiError as exc:
            log.warning("balance query failed: %s", exc)
        await until_stopped(stop, asyncio.sleep(interval_seconds))


async def until_stopped(stop: asyncio.Event, awaitable: Awaitable[None]) -> bool:
    """Await ``awaitable`` unless ``stop`` comes first (then cancel it); True if it finished."""
    work = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return work in done


@dataclass(frozen=True, slots=True)
class PollerParts:
    """What :func:`run_poller` builds, exposed for tests."""

    pending: PendingSet
    reader: TopicsReader
    reconciler: Reconciler
    incoming: IncomingPoller | None = None
    call_confirm: CallConfirmParts | None = None
    optout: OptOutRunner | None = None

    def readiness(self) -> tuple[bool, str]:
        """Ready once the topics' history is read (the pending set is complete), the
        incoming cursor is loaded and the waitcall topic read."""
        if not self.reader.is_caught_up:
            return False, "reading the topics"
        if self.incoming is not None and not self.incoming.loaded.is_set():
            return False, "loading the incoming cursor"
        status = f"{len(self.pending)} pending"
        for part in (self.call_confirm, self.optout):
            if part is None:
                continue
            ready, said = part.readiness()
            if not ready:
                return False, said
            status += f", {said}"
        return True, status


def build_poller(
    settings: Settings, client: SmscHttpClient, publisher: Publisher, metrics: HttpApiMetrics
) -> PollerParts:
    """The pending set, the reader that fills it from the topics, and the reconciler."""
    topics = settings.topics
    pending = PendingSet(settings.poller, on_drop=lambda why: metrics.poller_dropped(why).inc())
    tracker = PendingTracker(
        pending, results_topic=topics.send_results, dlr_topic=topics.dlr, settings=settings.poller
    )
    since_ms = int((time.time() - settings.poller.max_age_seconds) * 1000)
    reader = TopicsReader(
        settings.kafka, [topics.send_results, topics.dlr], tracker.on_record, since_ms=since_ms
    )
    reconciler = Reconciler(
        client, pending, publisher, dlr_topic=topics.dlr, settings=settings.poller, metrics=metrics
    )
    incoming = build_incoming(settings, client, publisher, metrics)
    return PollerParts(pending, reader, reconciler, incoming)


def build_incoming(
    settings: Settings, client: SmscHttpClient, publisher: Publisher, metrics: HttpApiMetrics
) -> IncomingPoller | None:
    """The incoming SMS poller with its cursor on Kafka (one per credential and number)."""
    poller = settings.poller
    if not poller.incoming_enabled:
        return None
    topic = CursorTopic(settings.topics.poll_cursor, poller.cursor_replication_factor)
    key = f"get_answers/{client.credential}/{poller.incoming_to_phone or '*'}"
    return IncomingPoller(
        client,
        KafkaCursorStore(settings.kafka, topic, publisher, key),
        publisher,
        topic=settings.topics.incoming,
        settings=poller,
        utc_offset_hours=settings.http_api.account_utc_offset_hours,
        metrics=metrics,
    )


async def run_poller(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    probes: Readiness | None = None,
    shutdown: Shutdown | None = None,
) -> None:
    """Reconcile messages without a final status, and watch the balance, until ``stop``."""
    problems = [f"GATEWAY_HTTP_API: {p}" for p in settings.http_api.problems()]
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    api_metrics = HttpApiMetrics.of(metrics)
    shutdown = shutdown or Shutdown(STEP_DRAIN_SECONDS)
    publisher = KafkaPublisher(settings.kafka, metrics)
    await publisher.start()
    client = SmscHttpClient(settings.http_api, api_metrics)
    try:
        parts = build_poller(settings, client, publisher, api_metrics)
        if settings.call_confirm.enabled:
            confirm = build_call_confirm(settings, client, publisher, metrics)
            parts = dataclasses.replace(parts, call_confirm=confirm)
        optout = build_optout(settings, client, publisher, metrics)
        if optout is not None:
            parts = dataclasses.replace(parts, optout=optout)
        http = settings.http
        async with role_probes(
            (http.host, http.port), metrics, "poller", parts.readiness, shared=probes
        ):
            await _run_tasks(parts, client, settings.poller, stop, shutdown)
    finally:
        await shutdown.step("closing the HTTP API client", client.aclose())
        await shutdown.step("flushing and closing the producer", publisher.stop())
        log.info("poller stopped")


async def _run_tasks(
    parts: PollerParts,
    client: SmscHttpClient,
    settings: PollerSettings,
    stop: asyncio.Event,
    shutdown: Shutdown,
) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            reading = group.create_task(parts.reader.run(), name="poller-reader")
            working = [
                group.create_task(
                    parts.reconciler.run(stop, parts.reader.caught_up), name="poller-reconcile"
                ),
                group.create_task(
                    watch_balance(client, settings.balance_interval_seconds, stop),
                    name="poller-balance",
                ),
            ]
            if parts.incoming is not None:
                working.append(group.create_task(parts.incoming.run(stop), name="poller-incoming"))
            if parts.call_confirm is not None:
                working.append(
                    group.create_task(parts.call_confirm.run(stop), name="poller-call-confirm")
                )
            if parts.optout is not None:
                working.append(group.create_task(parts.optout.run(stop), name="poller-optout"))
            await stop.wait()
            reading.cancel()
            # A round in progress may finish; one still waiting for Kafka or the provider
            # at the drain deadline is cancelled (nothing of it was acknowledged).
            await asyncio.wait(working, timeout=shutdown.drain_left())
            for task in working:
                task.cancel()
    except* GatewayError as failed:
        raise failed.exceptions[0] from None
