"""The correlator role: topics checked, probes up, the faust app run in the gateway's loop.

faust's own ``Worker`` is not used: it wants to own the event loop, the signals and logging.
The app is a mode ``Service`` and runs as one here, started after the topics are prepared and
stopped (agents, then consumer commit after a producer flush, then producer) when SIGTERM sets
``stop`` or when faust crashes. faust's stop waits for Kafka without a bound of its own (a
commit, a flush): it is given up at the role's close deadline (:mod:`gateway.shutdown`); what it
did not commit is processed again by the next worker, with the same event ids.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.http.probes import Readiness, role_probes
from gateway.metrics import Metrics
from gateway.shutdown import STEP_DRAIN_SECONDS, Shutdown, run_until

from .faustapp import CorrelatorApp
from .lag import reporting_lag
from .topology import prepare_topics

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
    problems = settings.correlator.problems()
    if problems:
        raise ConfigError("invalid configuration:\n  GATEWAY_CORRELATOR: " + "; ".join(problems))
    _quiet_faust_logs()
    worker = CorrelatorApp(settings, metrics)
    http = settings.http
    async with role_probes(
        (http.host, http.port), metrics, "correlator", lambda: _ready(worker), shared=probes
    ):
        inputs = [settings.topics.send_results, settings.topics.dlr]
        if await prepare_topics(
            settings.kafka, settings.correlator, worker.changelog_topics, inputs, stop
        ):
            consumed = [*inputs, settings.correlator.route_topic]
            await _run_app(
                worker, stop, metrics, consumed, shutdown or Shutdown(STEP_DRAIN_SECONDS)
            )


async def _run_app(
    worker: CorrelatorApp,
    stop: asyncio.Event,
    metrics: Metrics,
    consumed: list[str],
    shutdown: Shutdown,
) -> None:
    app = worker.app
    await app.start()
    log.info("correlator started")
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(app.wait_until_stopped())]
    try:
        async with reporting_lag(app, worker.settings.kafka, metrics, consumed):
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        crashed, reason = app.crashed, app.crash_reason
        await run_until(app.stop(), shutdown.close_deadline, "stopping the faust app")
        log.info("correlator stopped")
    if crashed:
        raise CorrelatorCrashedError(f"the correlator's faust app crashed: {reason!r}")


def _ready(worker: CorrelatorApp) -> tuple[bool, str]:
    if not worker.recovered.is_set():
        return False, "recovering tables"
    if worker.app.rebalancing:
        return False, "rebalancing"
    return True, f"{worker.correlator.part_count} parts, {worker.correlator.held_count} held"


def _quiet_faust_logs() -> None:
    # faust and mode narrate every rebalance and recovery step at INFO.
    level = max(logging.getLogger().level, logging.WARNING)
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(level)
