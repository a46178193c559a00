"""The ingress's routes on its HTTP front: HTTP in, :class:`CallbackHandler` answers out.

The callback route (``path``, or ``path/<token>`` with a path token) takes GET and POST;
the probes (``/metrics``, ``/healthz``, ``/readyz``) GET and HEAD; another method on those
paths gets 405, any other path 404. A body above ``max_body_bytes`` gets 413. Shutdown stops
accepting, then lets the callbacks being handled finish. No access log: the callback URL
may hold the path token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.metrics import Metrics
from gateway.settings.ingress import IngressSettings

from .front import HttpFront
from .handler import Answer, CallbackHandler
from .metrics import Refusal
from .params import CallbackRequest
from .wire import Exchange, HttpRequest, Limits

log = logging.getLogger(__name__)

_CALLBACK_METHODS = frozenset({"GET", "POST"})
_PROBE_METHODS = frozenset({"GET", "HEAD"})
_METRICS_TYPE = CONTENT_TYPE_LATEST.encode("ascii")


class IngressServer:
    """Serves callbacks and probes on ``settings.host:settings.port`` (0 picks a port)."""

    def __init__(
        self,
        settings: IngressSettings,
        handler: CallbackHandler,
        metrics: Metrics,
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._metrics = metrics
        self._ready = ready
        self._base = settings.path.rstrip("/") or "/"
        # With a token, the bare path answers 403 too: a 404 would make the provider drop
        # callbacks that a URL missing its token sends, instead of retrying them.
        self._token_prefix = f"{self._base.rstrip('/')}/" if settings.path_token else ""
        self._front = HttpFront(self._dispatch, _limits(settings))
        self.port = settings.port

    async def start(self) -> None:
        await self._front.start(self._settings.host, self._settings.port)
        self.port = self._front.port
        log.info("ingress listening on %s:%s", self._settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, wait (at most drain_timeout_seconds) for callbacks in progress."""
        await self._front.stop(self._settings.drain_timeout_seconds)
        await self._handler.drain()  # answers nobody waits for: bounded by the publish timeout

    def _dispatch(self, request: HttpRequest, exchange: Exchange) -> None:
        path = request.path
        token = self._token(path)
        if token is not None:
            if request.method not in _CALLBACK_METHODS:
                exchange.reply(405, b"405: Method Not Allowed\n", headers=b"Allow: GET, POST\r\n")
            else:
                self._callback(request, token, exchange)
        elif path in ("/metrics", "/healthz", "/readyz"):
            if request.method not in _PROBE_METHODS:
                exchange.reply(405, b"405: Method Not Allowed\n", headers=b"Allow: GET, HEAD\r\n")
            else:
                self._probe(path, exchange)
        else:
            exchange.reply(404, b"404: Not Found\n")

    def _token(self, path: str) -> str | None:
        """The path token given, "" when none is, ``None`` when the path is not a callback's."""
        if path == self._base:
            return ""
        if self._token_prefix and path.startswith(self._token_prefix):
            token = path[len(self._token_prefix) :]
            if token and "/" not in token:
                return token
        return None

    def _callback(self, request: HttpRequest, token: str, exchange: Exchange) -> None:
        handler = self._handler

        def reply(answer: Answer) -> None:
            exchange.reply(answer.status, answer.body)

        if self._token_prefix and not handler.access.token_matches(token):
            log.warning("callback refused: wrong path token (peer %s)", request.peer)
            reply(handler.refuse(Refusal.TOKEN))
        elif request.too_large:
            reply(handler.refuse(Refusal.TOO_LARGE))
        else:
            callback = CallbackRequest(
                request.method, request.query, request.body, request.content_type
            )
            handler.take(callback, request.peer, reply)

    def _probe(self, path: str, exchange: Exchange) -> None:
        if path == "/metrics":
            exchange.reply(200, generate_latest(self._metrics.registry), _METRICS_TYPE)
        elif path == "/healthz":
            exchange.reply(200, b"ok\n")
        else:
            ok, detail = self._ready()
            exchange.reply(200 if ok else 503, f"{detail}\n".encode())


def _limits(settings: IngressSettings) -> Limits:
    return Limits(
        max_body_bytes=settings.max_body_bytes,
        read_timeout=settings.read_timeout_seconds,
        keepalive_timeout=settings.keepalive_timeout_seconds,
    )
