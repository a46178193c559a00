"""``/metrics``, ``/healthz`` and ``/readyz`` for every role, on aiohttp."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.metrics import Metrics

ReadinessCheck = Callable[[], tuple[bool, str]]


def probe_routes(app: web.Application, metrics: Metrics, ready: ReadinessCheck) -> None:
    """Add the probe and metrics routes to ``app``."""

    async def metrics_view(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, detail = ready()
        return web.Response(status=200 if ok else 503, text=f"{detail}\n")

    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


class ProbeServer:
    """A small aiohttp server for the probes of roles without an HTTP server of their own."""

    def __init__(self, host: str, port: int, metrics: Metrics, ready: ReadinessCheck) -> None:
        self._app = web.Application()
        probe_routes(self._app, metrics, ready)
        self._runner = web.AppRunner(self._app, access_log=None)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        sockets = [s for s in self._runner.addresses if isinstance(s, tuple)]
        if sockets:
            self.port = int(sockets[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
