"""One HTTP/1.1 connection of the ingress's front: requests in, answers out, in order.

The request line, headers and body framing (Content-Length or chunked) are parsed by
httptools (llhttp, the parser of Node.js, strict: no obsolete line folding, no
Content-Length beside Transfer-Encoding, no bare LF). This module keeps what a server owes
around it:

- limits: the request target and the header block are bounded (414, 431); a body above
  ``max_body_bytes`` is not kept (``too_large``: the route answers 413), and is read and
  dropped up to ``discard_bytes`` so the answer reaches the client, then the connection
  closes; ``Expect: 100-continue`` is answered ``100 Continue``, or at once with the 413;
- anything the parser refuses gets a 400 and the connection closes; an upgrade (h2c,
  websocket, CONNECT) is refused with a 400, so are HTTP versions other than 1.0 and 1.1;
- keep-alive as HTTP/1.1 and HTTP/1.0 define it; pipelined requests are answered in the
  order they came, whatever order their answers are ready in, and reading stops while
  ``max_pipelined`` of them wait for an answer (or while the peer does not read ours);
- timeouts: a request must arrive whole within ``read_timeout`` of its first byte (else
  408), an idle keep-alive connection is closed after ``keepalive_timeout``; both are
  checked by the server once a second (:meth:`Connection.check`), not by a timer per
  request.

Each whole request goes to the server's ``dispatch`` with an :class:`Exchange`, its place in
the answer order; the answer may come at once or later (after Kafka's acknowledgement).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import NamedTuple, cast
from urllib.parse import unquote_to_bytes

import httptools

log = logging.getLogger(__name__)

TEXT = b"text/plain; charset=utf-8"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS = ("1.1", "1.0")
_CACHED_BODY = 128  # answers with bodies up to this size are rendered once a second


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 65536
    max_target_bytes: int = 8190  # the request line's target, as aiohttp's max_line_size
    max_head_bytes: int = 32768  # all header names and values together
    discard_bytes: int = 1 << 20  # of a body too large, read and dropped before closing
    max_pipelined: int = 32
    read_timeout: float = 30.0  # seconds from a request's first byte to its last
    keepalive_timeout: float = 75.0  # seconds an idle connection is kept


class HttpRequest(NamedTuple):
    """A whole request. ``path`` is percent-decoded; ``query`` is the raw query string (no
    ``?``). A body above the limit is not kept: ``too_large`` and an empty ``body``. (A
    tuple: one is built per request, where a frozen dataclass costs three times as much.)"""

    method: str
    path: str
    query: bytes
    body: bytes
    content_type: str
    peer: str | None
    too_large: bool = False


Dispatch = Callable[[HttpRequest, "Exchange"], None]


@dataclass(slots=True)
class FrontState:
    """What the server shares with its connections: the dispatcher, the limits, the clock
    (whole seconds, advanced by the server) and the answers rendered this second."""

    dispatch: Dispatch
    limits: Limits
    tick: int = 0
    date: bytes = b""
    connections: set[Connection] = field(default_factory=set)
    emptied: asyncio.Event | None = None  # set when the last connection closes (shutdown)
    rendered: dict[tuple[int, bytes, bytes, bytes, int], bytes] = field(default_factory=dict)

    def render(
        self, status: int, body: bytes, content_type: bytes, headers: bytes, form: int
    ) -> bytes:
        """The answer's bytes; ``form`` is :class:`Exchange`'s: close, keep-alive, head."""
        key = (status, body, content_type, headers, form)
        answer = self.rendered.get(key)
        if answer is None:
            answer = _render(status, body, content_type, headers, form, date=self.date)
            if len(body) <= _CACHED_BODY:
                self.rendered[key] = answer
        return answer

    def new_second(self, tick: int, date: bytes) -> None:
        self.tick = tick
        self.date = date
        self.rendered.clear()


_CLOSE = 1  # the answer closes the connection
_KEEP_ALIVE_10 = 2  # an HTTP/1.0 client asked to keep the connection: say it is kept
_HEAD = 4  # the answer to HEAD has no body


def _render(
    status: int, body: bytes, content_type: bytes, headers: bytes, form: int, *, date: bytes
) -> bytes:
    phrase = HTTPStatus(status).phrase.encode("ascii")
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, phrase),
        b"Content-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n" % (content_type, len(body), date),
        headers,
    ]
    if form & _CLOSE:
        head.append(b"Connection: close\r\n")
    elif form & _KEEP_ALIVE_10:
        head.append(b"Connection: keep-alive\r\n")
    head.append(b"\r\n")
    if not form & _HEAD:
        head.append(body)
    return b"".join(head)


class Exchange:
    """One request's place in its connection's answer order; answer it once."""

    __slots__ = ("_connection", "answer", "form")

    def __init__(self, connection: Connection, form: int) -> None:
        self._connection = connection
        self.form = form
        self.answer: bytes | None = None

    def reply(
        self, status: int, body: bytes, content_type: bytes = TEXT, headers: bytes = b""
    ) -> None:
        """Answer; ``headers`` are extra header lines, each ending in CRLF."""
        if self.answer is not None:
            return
        connection = self._connection
        self.answer = connection.state.render(status, body, content_type, headers, self.form)
        connection.answered(self)


class _RefusedError(Exception):
    """Raised inside a parser callback: answer ``status`` and close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class _StopError(Exception):
    """Raised inside a parser callback: read no more from this connection."""


class Connection(asyncio.Protocol):
    """One client connection (see the module's docstring)."""

    def __init__(self, state: FrontState) -> None:
        self.state = state
        self._limits = state.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._queue: deque[Exchange] = deque()
        self._since = state.tick  # the first byte of the request in progress, or idle since
        self._in_request = False
        self._closing = False  # answer what is queued, then close; read nothing more
        self._draining = False  # the server stops: finish the request begun, then close
        self._paused = False  # reading paused: too many pipelined, or the peer not reading
        self._write_paused = False
        self._reset()

    def _reset(self) -> None:
        self._target = b""
        self._content_type = b""
        self._content_length = -1
        self._head_bytes = 0
        self._expect_continue = False
        self._chunks: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._refusal: tuple[int, str] | None = None
        self._method = b""
        self._version = ""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not one
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if not state.connections and state.emptied is not None:
            state.emptied.set()
        self._closing = True
        self._queue.clear()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._callback_failed(exc.__context__)
        except httptools.HttpParserUpgrade:
            self._close_after_answers()  # the upgrade request itself was refused (400)
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed request: {exc}")

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self._write_paused = False
        if len(self._queue) < self._limits.max_pipelined:
            self._resume()

    def eof_received(self) -> bool | None:
        # The peer will send nothing more: answer what it asked, then close.
        self._closing = True
        if not self._queue and self._transport is not None:
            self._transport.close()
        return True

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._in_request = True
        self._since = self.state.tick
        self._reset()

    def on_url(self, fragment: bytes) -> None:
        self._target += fragment
        if len(self._target) > self._limits.max_target_bytes:
            raise _RefusedError(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > self._limits.max_head_bytes:
            raise _RefusedError(431, "request header fields too large")
        size = len(name)
        if size == 12 and name.lower() == b"content-type":
            self._content_type = value
        elif size == 14 and name.lower() == b"content-length":
            self._content_length = int(value)  # llhttp let through digits only
        elif size == 6 and name.lower() == b"expect":
            self._expect_continue = value.strip().lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._method = parser.get_method()
        self._version = version = parser.get_http_version()
        if parser.should_upgrade():
            self._refusal = (400, "protocol upgrades are not supported")
        elif version not in _VERSIONS:
            self._refusal = (400, "only HTTP/1.0 and HTTP/1.1 are served")
        elif self._content_length > self._limits.max_body_bytes:
            self._too_large = True
        if self._expect_continue and self._refusal is None:
            if self._too_large:
                self._dispatch_early()
            elif not self._queue and self._transport is not None:
                self._transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self._body_bytes += len(chunk)
        if self._too_large:
            if self._body_bytes > self._limits.discard_bytes:
                self._dispatch_early()
        elif self._body_bytes > self._limits.max_body_bytes:
            self._too_large = True
            self._chunks = []
        else:
            self._chunks.append(chunk)

    def on_message_complete(self) -> None:
        self._in_request = False
        self._since = self.state.tick
        if self._refusal is not None:
            self._refuse(*self._refusal)
            raise _StopError
        keep = self._parser.should_keep_alive() and not self._draining and not self._too_large
        exchange = self._enqueue(keep)
        self._dispatch(exchange)
        if not keep:
            raise _StopError
        if len(self._queue) >= self._limits.max_pipelined:
            self._pause()

    # answers, in order

    def answered(self, exchange: Exchange) -> None:
        """An exchange has its answer: write it, and any after it that wait for it."""
        queue = self._queue
        if not queue or queue[0] is not exchange or self._transport is None:
            return
        transport = self._transport
        while queue and (answer := queue[0].answer) is not None:
            closes = queue.popleft().form & _CLOSE
            transport.write(answer)
            if closes:
                self._closing = True
                queue.clear()
                transport.close()
                return
        self._since = self.state.tick
        if not queue and (self._closing or self._draining) and not self._in_request:
            transport.close()
        elif self._paused and len(queue) < self._limits.max_pipelined and not self._write_paused:
            self._resume()

    def _enqueue(self, keep_alive: bool) -> Exchange:
        form = 0 if keep_alive else _CLOSE
        if keep_alive and self._version == "1.0":
            form |= _KEEP_ALIVE_10
        if self._method == b"HEAD":
            form |= _HEAD
        exchange = Exchange(self, form)
        self._queue.append(exchange)
        return exchange

    def _request(self) -> HttpRequest:
        target = self._target
        if not target.startswith(b"/"):
            target = _origin_form(target)
        raw_path, _, query = target.partition(b"?")
        path = _decode_path(raw_path)
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return HttpRequest(
            self._method.decode("ascii"),
            path,
            query.partition(b"#")[0],
            b"" if self._too_large else body,
            self._content_type.decode("latin-1"),
            self._peer,
            self._too_large,
        )

    def _dispatch_early(self) -> None:
        """A body too large to read on: answer now (413, from the route) and close."""
        self._too_large = True
        self._draining = True
        self._dispatch(self._enqueue(keep_alive=False))
        raise _StopError

    def _dispatch(self, exchange: Exchange) -> None:
        try:
            self.state.dispatch(self._request(), exchange)
        except Exception:  # a fault of ours, not the client's: answered, then closed
            log.exception("HTTP request failed in the server")
            exchange.form = _CLOSE
            exchange.reply(500, b"500: internal error\n")
            raise _StopError from None

    def _refuse(self, status: int, text: str) -> None:
        """Answer ``status`` after the answers already owed, then close."""
        log.debug("HTTP request refused (%d): %s (peer %s)", status, text, self._peer)
        self._in_request = False
        exchange = Exchange(self, _CLOSE)
        self._queue.append(exchange)
        self._close_after_answers()
        exchange.reply(status, f"{status}: {text}\n".encode())

    def _callback_failed(self, cause: BaseException | None) -> None:
        if isinstance(cause, _StopError):
            self._close_after_answers()
        elif isinstance(cause, _RefusedError):
            self._refuse(cause.status, str(cause))
        else:  # a fault of ours in a parser callback, not the client's
            log.error("HTTP request failed in the server", exc_info=cause)
            self._refuse(500, "internal error")

    def _close_after_answers(self) -> None:
        self._closing = True
        self._pause()
        if not self._queue and self._transport is not None:
            self._transport.close()

    def _pause(self) -> None:
        transport = self._transport
        if not self._paused and transport is not None and not transport.is_closing():
            self._paused = True
            transport.pause_reading()

    def _resume(self) -> None:
        transport = self._transport
        if self._paused and not self._closing and transport is not None:
            self._paused = False
            transport.resume_reading()

    # the server's once-a-second look, and its shutdown

    def check(self, tick: int) -> None:
        """Close a connection idle too long, or whose request is taking too long to arrive
        (408). A connection waiting for answers of ours is left alone: the publish timeout
        bounds those."""
        if self._queue or self._transport is None:
            return
        waited = tick - self._since
        if self._in_request:
            if waited > self._limits.read_timeout:
                self._refuse(408, "request not received in time")
        elif waited > self._limits.keepalive_timeout or self._closing:
            self._transport.close()

    def drain(self) -> None:
        """Finish the request begun and the answers owed, then close; close now if idle."""
        self._draining = True
        if not self._queue and not self._in_request and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _origin_form(target: bytes) -> bytes:
    """The path and query of an absolute-form target (``http://host/path?q``); ``*`` and
    the authority form are not paths: they match no route."""
    scheme, separator, rest = target.partition(b"://")
    if not separator or b"/" in scheme:
        return b"*"
    ends = [at for at in (rest.find(b"/"), rest.find(b"?")) if at >= 0]
    tail = rest[min(ends) :] if ends else b""
    return tail if tail.startswith(b"/") else b"/" + tail


def _decode_path(raw: bytes) -> str:
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "surrogateescape")
