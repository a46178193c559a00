"""The webhook ingress as one service: its HTTP server and readiness prober, started and
stopped together (the ``ingress`` role, :mod:`gateway.roles.ingress`, runs it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol

from gateway.events.envelope import utc_now
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.settings.ingress import IngressSettings

from .handler import CallbackHandler, OfferingPublisher
from .health import WriteHealth
from .metrics import IngressMetrics
from .server import IngressServer

log = logging.getLogger(__name__)


class ProbedPublisher(OfferingPublisher, Protocol):
    async def reachable(self) -> bool:
        """Whether a broker answers a metadata request now."""


class Ingress:
    """The ingress's HTTP server and readiness prober, started and stopped together."""

    def __init__(
        self,
        settings: IngressSettings,
        topics: TopicSettings,
        publisher: ProbedPublisher,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self.metrics = IngressMetrics(metrics.registry)
        self.health = WriteHealth(settings.readiness_interval_seconds)
        handler = CallbackHandler(
            settings,
            topics,
            publisher,
            metrics=metrics,
            ingress_metrics=self.metrics,
            health=self.health,
            clock=clock,
        )
        self._server = IngressServer(settings, handler, metrics, self._ready)
        self.metrics.kafka_writable.set_function(lambda: float(self._ready()[0]))
        self._prober: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._probe()  # readiness is known before the first request
        await self._server.start()
        self._prober = asyncio.create_task(self._probe_forever(), name="ingress-prober")

    async def stop(self) -> None:
        await self._server.stop()
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
            self._prober = None

    async def __aenter__(self) -> Ingress:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _ready(self) -> tuple[bool, str]:
        return self.health.ready(time.monotonic())

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.readiness_interval_seconds / 2)
            if self.health.needs_probe(time.monotonic()):
                await self._probe()

    async def _probe(self) -> None:
        try:
            async with asyncio.timeout(self._settings.publish_timeout_seconds):
                ok = await self._publisher.reachable()
        except TimeoutError:
            ok = False
        if ok:
            self.health.succeeded(time.monotonic())
        else:
            self.health.failed("no broker answered a metadata request")
