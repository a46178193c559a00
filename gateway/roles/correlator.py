"""The correlator role: topics checked, probes up, the route stage and the faust app run in
the gateway's loop.

faust's own ``Worker`` is not used: it wants to own the event loop, the signals and logging.
The app is a mode ``Service`` and runs as one here, started after the topics are prepared and
stopped (agents, then consumer commit after a producer flush, then producer) when SIGTERM
sets ``stop``, when faust crashes, or when an output or the route stage fails; the route stage
(:mod:`gateway.correlator.router`) runs beside it as a task.

At a stop, the route stage gets the drain (:mod:`gateway.shutdown`) to see what it produced
acknowledged and commit it; faust's stop waits for Kafka without a bound of its own (a commit,
a flush) and is given up at the role's close deadline. What either did not commit is
processed again by the next worker, with the same event ids.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.correlator.faustapp import CorrelatorApp
from gateway.correlator.lag import reporting_lag
from gateway.correlator.localstore import discard_stale_partitions
from gateway.correlator.records import Channel
from gateway.correlator.router import Router
from gateway.correlator.topology import carry_over_offsets, prepare_topics
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.roles.probes import Readiness, role_probes
from gateway.settings import Settings, require_role
from gateway.shutdown import STEP_DRAIN_SECONDS, Shutdown, run_until

log = logging.getLogger(__name__)


class CorrelatorCrashedError(GatewayError):
    """faust stopped the app on an error it could not handle (Kafka gone, a send failed)."""

    retriable = True


async def run_correlator(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    probes: Readiness | None = None,
    shutdown: Shutdown | None = None,
) -> None:
    """Run the correlator role (delivery reports joined to requests) until ``stop`` is set."""
    require_role(settings, "correlator")
    _quiet_faust_logs()
    worker = CorrelatorApp(settings, metrics)
    router = _router(settings, metrics, worker)
    http = settings.http
    async with role_probes(
        (http.host, http.port), metrics, "correlator", lambda: _ready(worker, router), shared=probes
    ):
        inputs = [settings.topics.send_results, settings.topics.dlr]
        if await prepare_topics(
            settings.kafka, settings.correlator, worker.changelog_topics, inputs, stop
        ):
            # A kept RocksDB directory ahead of its changelogs (Kafka lost data) is wiped
            # partition by partition, so faust restores instead of refusing to start.
            tables = worker.reports.tables
            await discard_stale_partitions(settings.kafka, tables, settings.correlator.partitions)
            app_id = settings.correlator.app_id
            await carry_over_offsets(settings.kafka, app_id, _route_group(app_id), inputs)
            shutdown = shutdown or Shutdown(STEP_DRAIN_SECONDS)
            await _run(worker, router, stop, shutdown, metrics)


def _router(settings: Settings, metrics: Metrics, worker: CorrelatorApp) -> Router:
    c, topics = settings.correlator, settings.topics
    return Router(
        settings.kafka,
        metrics,
        worker.metrics,
        worker.sends,
        group_id=_route_group(c.app_id),
        partitions=c.partitions,
        inputs=(topics.send_results, topics.dlr),
        topics={Channel.ROUTE: c.route_topic, Channel.DEAD_LETTER: topics.dead_letter},
        commit_interval_seconds=c.commit_interval_seconds,
    )


def _route_group(app_id: str) -> str:
    return f"{app_id}-route"


async def _run(
    worker: CorrelatorApp,
    router: Router,
    stop: asyncio.Event,
    shutdown: Shutdown,
    metrics: Metrics,
) -> None:
    routing_stop = asyncio.Event()
    await worker.start()
    # After the app: the route stage produces through faust's producer.
    routing = asyncio.create_task(router.run(routing_stop), name="correlator-route")
    try:
        log.info("correlator started")
        # The route stage's consumer group reports the inputs' lag itself; this is the join's.
        topics = [worker.settings.correlator.route_topic]
        async with reporting_lag(worker.app, worker.settings.kafka, metrics, topics):
            await _until_done(stop, worker, routing)
    finally:
        routing_stop.set()
        await run_until(routing, shutdown.drain_deadline, "stopping the route stage")
        crashed, reason = worker.app.crashed, worker.app.crash_reason
        await run_until(worker.stop(), shutdown.close_deadline, "stopping the faust app")
        log.info("correlator stopped")
    if crashed:
        raise CorrelatorCrashedError(f"the correlator's faust app crashed: {reason!r}")
    if worker.outputs.acks.failure is not None:
        failure = worker.outputs.acks.failure
        raise CorrelatorCrashedError(f"a status could not be stored: {failure}") from failure
    routed = routing.exception() if routing.done() and not routing.cancelled() else None
    if routed is not None:
        raise CorrelatorCrashedError(f"the route stage failed: {routed!r}") from routed


async def _until_done(
    stop: asyncio.Event, worker: CorrelatorApp, routing: asyncio.Task[None]
) -> None:
    """Until stopped, or until faust, the outputs or the route stage give up."""
    waiters = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(worker.app.wait_until_stopped()),
        asyncio.ensure_future(worker.failed.wait()),
    ]
    try:
        await asyncio.wait([*waiters, routing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _ready(worker: CorrelatorApp, router: Router) -> tuple[bool, str]:
    if not worker.recovered.is_set():
        return False, "recovering tables"
    if worker.app.rebalancing:
        return False, "rebalancing"
    if not router.started.is_set():
        return False, "route stage starting"
    join = worker.reports.correlator
    return True, f"{join.part_count} parts, {join.held_count} held"


def _quiet_faust_logs() -> None:
    # faust and mode narrate every rebalance and recovery step at INFO.
    level = max(logging.getLogger().level, logging.WARNING)
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(level)
