"""``/metrics``, ``/healthz`` and ``/readyz`` for every role, on aiohttp."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

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

    async def readyz_of(request: web.Request) -> web.Response:
        role = request.match_info["role"]
        found = ready.of(role) if isinstance(ready, Readiness) else None
        if found is None:
            return web.Response(status=404, text=f"no role {role[:32]!r} in this process\n")
        ok, detail = found
        return web.Response(status=200 if ok else 503, text=f"{detail}\n")

    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/readyz/{role}", readyz_of)


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


class Readiness:
    """The readiness of several roles sharing one process and one probe server: ready when
    every role is, with each role's detail; :meth:`of` is one role's own."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def add(self, role: str, check: ReadinessCheck) -> None:
        self._checks[role] = check

    def remove(self, role: str) -> None:
        self._checks.pop(role, None)

    def of(self, role: str) -> tuple[bool, str] | None:
        """One role's readiness, or None when the process does not run it."""
        check = self._checks.get(role)
        return None if check is None else check()

    def __call__(self) -> tuple[bool, str]:
        if not self._checks:
            return False, "no role running"
        results = [(role, *check()) for role, check in self._checks.items()]
        return all(ok for _, ok, _ in results), "; ".join(
            f"{role}: {detail}" for role, _, detail in results
        )


@contextlib.asynccontextmanager
async def role_probes(
    address: tuple[str, int],
    metrics: Metrics,
    role: str,
    ready: ReadinessCheck,
    *,
    shared: Readiness | None,
) -> AsyncIterator[None]:
    """The probes of one role: its own server on ``address`` (host, port), or, when the
    process runs several roles, its readiness added to their ``shared`` server."""
    if shared is not None:
        shared.add(role, ready)
        try:
            yield
        finally:
            shared.remove(role)
        return
    server = ProbeServer(*address, metrics, ready)
    await server.start()
    try:
        yield
    finally:
        await server.stop()
