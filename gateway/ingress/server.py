"""The aiohttp adapter of the ingress: HTTP in, :class:`CallbackHandler` answers out.

It owns the HTTP server: the callback route (``path``, or ``path/<token>`` with a path
token), the probes (``/metrics``, ``/healthz``, ``/readyz``), the body size limit (413),
and a shutdown that stops accepting, then lets the callbacks being handled finish. No
access log: the callback URL may hold the path token.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.http.probes import ReadinessCheck, probe_routes
from gateway.metrics import Metrics

from .handler import Answer, CallbackHandler
from .params import CallbackRequest
from .settings import IngressSettings

log = logging.getLogger(__name__)

_METHODS = ("GET", "POST")


class IngressServer:
    """Serves callbacks and probes on ``settings.host:settings.port`` (0 picks a port)."""

    def __init__(
        self,
        settings: IngressSettings,
        handler: CallbackHandler,
        metrics: Metrics,
        ready: ReadinessCheck,
    ) -> None:
        self._settings = settings
        self._handler = handler
        app = web.Application(client_max_size=settings.max_body_bytes)
        base = settings.path.rstrip("/") or "/"
        # With a token, the bare path answers 403 too: a 404 would make the provider drop
        # callbacks that a URL missing its token sends, instead of retrying them.
        routes = [base, f"{base.rstrip('/')}/{{token}}"] if settings.path_token else [base]
        for route in routes:
            for method in _METHODS:
                app.router.add_route(method, route, self._callback)
        probe_routes(app, metrics, ready)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=settings.drain_timeout_seconds
        )
        self.port = settings.port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        await site.start()
        addresses = [a for a in self._runner.addresses if isinstance(a, tuple)]
        if addresses:
            self.port = int(addresses[0][1])
        log.info("ingress listening on %s:%s", self._settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, wait (at most drain_timeout_seconds) for callbacks in progress."""
        await self._runner.cleanup()

    async def _callback(self, request: web.Request) -> web.Response:
        if self._settings.path_token and not self._handler.access.token_matches(
            request.match_info.get("token", "")
        ):
            log.warning("callback refused: wrong path token (peer %s)", request.remote)
            return _respond(self._handler.refuse("refused_token"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _respond(self._handler.refuse("too_large"))
        callback = CallbackRequest(
            method=request.method,
            query=_raw_query(request.raw_path),
            body=body,
            content_type=request.headers.get("Content-Type", ""),
        )
        return _respond(await self._handler.handle(callback, request.remote))


def _respond(answer: Answer) -> web.Response:
    return web.Response(status=answer.status, text=f"{answer.text}\n")


def _raw_query(raw_path: str) -> bytes:
    """The query string as the bytes that arrived (aiohttp keeps undecodable bytes as
    surrogates)."""
    query = raw_path.partition("?")[2].partition("#")[0]
    try:
        return query.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return query.encode("utf-8", "replace")
