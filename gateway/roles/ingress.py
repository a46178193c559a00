"""``smsc-gateway ingress``: the webhook ingress (provider callbacks to Kafka), and its shutdown.

Shutdown drains in order: stop accepting callbacks and finish those in progress (until the
drain deadline: a callback still waiting for Kafka then gets no answer, and the provider
sends it again), stop the readiness prober, flush and close the producer (until the close
deadline); see :mod:`gateway.shutdown`.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.ingress.service import Ingress
from gateway.kafka.batching import BatchingPublisher
from gateway.metrics import Metrics
from gateway.settings import Settings, require_role
from gateway.shutdown import Shutdown, run_until

log = logging.getLogger(__name__)


async def run_ingress(
    settings: Settings, metrics: Metrics, stop: asyncio.Event, *, shutdown: Shutdown | None = None
) -> None:
    """Run the webhook ingress (provider callbacks to Kafka) until ``stop`` is set."""
    require_role(settings, "ingress")
    linger_ms = round(settings.ingress.publish_linger_seconds * 1000)
    publisher = BatchingPublisher(settings.kafka, metrics, linger_ms=linger_ms)
    await publisher.start()
    shutdown = shutdown or Shutdown(settings.ingress.drain_timeout_seconds)
    try:
        await _serve(Ingress(settings.ingress, settings.topics, publisher, metrics), stop, shutdown)
    finally:
        await shutdown.step("flushing and closing the producer", publisher.stop())
        log.info("ingress stopped")


async def _serve(ingress: Ingress, stop: asyncio.Event, shutdown: Shutdown) -> None:
    await ingress.start()
    try:
        await stop.wait()
        log.info("ingress stopping")
    finally:
        await run_until(ingress.stop(), shutdown.drain_deadline, "finishing the callbacks")
