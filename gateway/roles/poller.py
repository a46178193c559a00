"""``smsc-gateway poller``: reconciliation by status queries, and the balance as a metric.

- The pending set (:mod:`gateway.http_api.pending`) is rebuilt at start from the last
  ``max_age_seconds`` of ``smsc.send-results.v1`` and ``smsc.dlr.v1`` and kept up to date by
  following them.
- Every ``interval_seconds`` (the provider allows one multi-id status query a minute) up to
  ``batch_size`` messages without a final report for ``min_age_seconds`` are queried in one
  request; each answer whose status changed since the last poll is published on
  ``smsc.dlr.v1`` as ``smsc.dlr/1`` with ``source: poll`` (key: the message id). A final
  answer ends the message's tracking; others are asked again after ``repoll_seconds``.
- balance.php is queried every ``balance_interval_seconds`` (the client keeps it under the
  provider's 10 a minute) into ``smsc_http_balance``.
- with ``incoming_enabled``, new incoming SMS are fetched by get.php?get_answers=1 and
  published on ``smsc.incoming.v1`` (:mod:`gateway.http_api.incoming_poll`), the cursor kept
  on Kafka.
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
import dataclasses
import logging
import time
from dataclasses import dataclass

from gateway.callconfirm.runner import CallConfirmParts, build_call_confirm
from gateway.errors import GatewayError
from gateway.http_api.client import SmscHttpClient
from gateway.http_api.incoming_poll import IncomingPoller
from gateway.http_api.metrics import HttpApiMetrics
from gateway.http_api.pending import PendingSet, PendingTracker
from gateway.http_api.poller import Reconciler, watch_balance
from gateway.kafka.client import KafkaPublisher
from gateway.kafka.cursor import CursorTopic, KafkaCursorStore
from gateway.kafka.follow import TopicsReader
from gateway.kafka.records import Publisher
from gateway.metrics import Metrics
from gateway.optout.runner import OptOutRunner, build_optout
from gateway.roles.probes import Readiness, role_probes
from gateway.settings import Settings, require_role
from gateway.settings.http_api import PollerSettings
from gateway.shutdown import STEP_DRAIN_SECONDS, Shutdown

log = logging.getLogger(__name__)


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
    http_metrics: HttpApiMetrics | None = None,
) -> None:
    """Reconcile messages without a final status, and watch the balance, until ``stop``."""
    require_role(settings, "poller")
    api_metrics = http_metrics or HttpApiMetrics(metrics)
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
