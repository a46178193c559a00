"""``smsc-gateway all``: the production roles of a small deployment in one process.

It runs the sender (whose transceiver binds also receive delivery reports and incoming SMS)
and the correlator always; the webhook ingress when its settings allow it to start (a callback
secret, or unsigned callbacks accepted); the poller when an HTTP API credential is set. The
receiver role is left out: the sender's binds already receive, and another bind of the same
login would take the provider's one connection (unless the login is MCONn).

One probe server on ``GATEWAY_HTTP_PORT`` answers ``/readyz`` for all of them (ready when each
is) and serves the shared ``/metrics``; the ingress keeps its own server, which takes the
callbacks. A role that fails stops the others cleanly, and its error ends the process.

Every role shares one :class:`~gateway.shutdown.Shutdown`, whose drain is the sender's
(``GATEWAY_SENDER_DRAIN_TIMEOUT_SECONDS``): the process ends at most that plus the close
allowance after SIGTERM.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from gateway.http_api.metrics import HttpApiMetrics
from gateway.metrics import Metrics
from gateway.roles.correlator import run_correlator
from gateway.roles.ingress import run_ingress
from gateway.roles.poller import run_poller
from gateway.roles.probes import ProbeServer, Readiness
from gateway.roles.sender import run_sender
from gateway.settings import Settings, require_role, role_problems
from gateway.shutdown import Shutdown, stop_when

log = logging.getLogger(__name__)

RoleRunner = Callable[[Settings, Metrics, asyncio.Event], Awaitable[None]]


def roles_to_run(
    settings: Settings,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: Shutdown | None = None,
) -> dict[str, RoleRunner]:
    """The roles ``all`` runs with these settings, each bound to the shared readiness and
    shutdown deadlines."""
    shutdown = shutdown or Shutdown(settings.sender.drain_timeout_seconds)
    # The sender's HTTP transport and the poller count the same requests.
    http_metrics = HttpApiMetrics(metrics)
    roles: dict[str, RoleRunner] = {
        "sender": functools.partial(
            run_sender, probes=readiness, shutdown=shutdown, http_metrics=http_metrics
        ),
        "correlator": functools.partial(run_correlator, probes=readiness, shutdown=shutdown),
    }
    ingress_problems = role_problems(settings, {"ingress"})
    if ingress_problems:
        log.info("all: ingress not started (%s)", "; ".join(ingress_problems))
    else:
        roles["ingress"] = functools.partial(run_ingress, shutdown=shutdown)
    if role_problems(settings, {"poller"}):
        log.info("all: poller not started (no usable HTTP API credential)")
    else:
        roles["poller"] = functools.partial(
            run_poller, probes=readiness, shutdown=shutdown, http_metrics=http_metrics
        )
    return roles


async def run_all(settings: Settings, metrics: Metrics, stop: asyncio.Event) -> None:
    """Every production role a small deployment needs, in one process."""
    require_role(settings, "all")
    readiness = Readiness()
    roles = roles_to_run(settings, metrics, readiness)
    log.info("all: running %s", ", ".join(roles))
    probes = ProbeServer(settings.http.host, settings.http.port, metrics, readiness)
    await probes.start()
    stopping = asyncio.Event()
    failures: list[BaseException] = []

    async def run_role(name: str, runner: RoleRunner) -> None:
        try:
            await runner(settings, metrics, stopping)
        except Exception as exc:
            log.exception("all: the %s role failed; stopping the others", name)
            failures.append(exc)
        finally:
            stopping.set()

    try:
        async with asyncio.TaskGroup() as group:
            forwarder = group.create_task(stop_when(stop, stopping), name="stop-forwarder")
            roles_done = [
                group.create_task(run_role(name, runner), name=f"role-{name}")
                for name, runner in roles.items()
            ]
            await asyncio.wait(roles_done)
            forwarder.cancel()
    finally:
        await probes.stop()
    if failures:
        raise failures[0]
