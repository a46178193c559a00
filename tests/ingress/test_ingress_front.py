"""The ingress's HTTP/1.1 front over real sockets, with a dispatcher that answers when told:
keep-alive and HTTP/1.0, pipelining answered in order whatever order the answers come in,
chunked bodies, body limits (413 with and without ``Expect: 100-continue``), clean refusals
of what the parser or the limits refuse, read and keep-alive timeouts, HEAD, and a shutdown
that lets the requests in progress finish."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from gateway.ingress.front import HttpFront
from gateway.ingress.wire import Exchange, HttpRequest, Limits

LIMITS = Limits(max_body_bytes=1024, max_target_bytes=256, max_head_bytes=2048, discard_bytes=8192)


@dataclass
class Recorder:
    """Answers each request with its method, path, query and body, at once, or, for paths
    under /later, only when :meth:`release` says so."""

    requests: list[HttpRequest] = field(default_factory=list)
    held: dict[str, Exchange] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, request: HttpRequest, exchange: Exchange) -> None:
        self.requests.append(request)
        self.arrived.set()
        if request.too_large:
            exchange.reply(413, b"too large\n")
        elif request.path.startswith("/later/"):
            self.held[request.path] = exchange
        else:
            exchange.reply(200, echo(request))

    async def holding(self, path: str) -> None:
        """Wait until the request for ``path`` waits for its answer."""
        async with asyncio.timeout(5):
            while path not in self.held:
                self.arrived.clear()
                await self.arrived.wait()

    def release(self, path: str) -> None:
        self.held.pop(path).reply(200, path.encode())


def echo(request: HttpRequest) -> bytes:
    return b"%s %s ?%s %s" % (
        request.method.encode(),
        request.path.encode(),
        request.query,
        request.body,
    )


@asynccontextmanager
async def serving(limits: Limits = LIMITS) -> AsyncIterator[tuple[HttpFront, Recorder]]:
    recorder = Recorder()
    front = HttpFront(recorder, limits)
    await front.start("127.0.0.1", 0)
    try:
        yield front, recorder
    finally:
        await front.stop(drain_timeout=2)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """Raw bytes out, parsed answers in: what a test needs to see the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer(self, head: bool = False) -> Answer:
        async with asyncio.timeout(5):
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            length = 0 if head else int(headers.get("Content-Length", "0"))
            return Answer(status, headers, await self.reader.readexactly(length))

    async def closed(self) -> bool:
        """Whether the server closed the connection (EOF within 5 s)."""
        async with asyncio.timeout(5):
            return await self.reader.read(1) == b""

    def close(self) -> None:
        self.writer.close()


def post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: t", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path: str, *extra: str, version: str = "1.1", method: str = "GET") -> bytes:
    return (
        "\r\n".join([f"{method} {path} HTTP/{version}", "Host: t", *extra]) + "\r\n\r\n"
    ).encode()


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        for i in range(3):
            client.send(post(f"/cb?i={i}", b"id=%d" % i))
            answer = await client.answer()
            assert (answer.status, answer.body) == (200, b"POST /cb ?i=%d id=%d" % (i, i))
            assert "Connection" not in answer.headers
            assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", answer.headers["Date"])
        assert front.connections == 1
        client.close()
    assert [r.peer for r in recorder.requests] == ["127.0.0.1"] * 3


async def test_http_1_0_closes_unless_asked_to_keep_alive() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/a", version="1.0"))
        answer = await client.answer()
        assert (answer.status, answer.headers["Connection"]) == (200, "close")
        assert await client.closed()
        kept = await Client.connect(front.port)
        for _ in range(2):
            kept.send(get("/a", "Connection: keep-alive", version="1.0"))
            assert (await kept.answer()).headers["Connection"] == "keep-alive"
        kept.close()


async def test_connection_close_is_honoured() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/a", "Connection: close") + get("/never"))
        answer = await client.answer()
        assert (answer.status, answer.headers["Connection"]) == (200, "close")
        assert await client.closed()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        client.send(get("/later/1") + get("/now") + get("/later/2") + get("/now2"))
        await recorder.holding("/later/2")
        recorder.release("/later/2")  # ready before the first: it must wait for it
        await asyncio.sleep(0.05)
        recorder.release("/later/1")
        bodies = [(await client.answer()).body for _ in range(4)]
        assert bodies == [b"/later/1", b"GET /now ? ", b"/later/2", b"GET /now2 ? "]
        client.close()


async def test_many_pipelined_requests_pause_reading_and_all_get_answers() -> None:
    async with serving(Limits(max_pipelined=4)) as (front, recorder):
        client = await Client.connect(front.port)
        client.send(b"".join(get(f"/later/{i}") for i in range(8)))
        await asyncio.sleep(0.2)
        # What one read brought is parsed; then reading stops until answers leave.
        client.send(b"".join(get(f"/later/{i}") for i in range(8, 40)))
        await asyncio.sleep(0.2)
        assert len(recorder.requests) == 8
        for i in range(40):
            await recorder.holding(f"/later/{i}")
            recorder.release(f"/later/{i}")
            assert (await client.answer()).body == f"/later/{i}".encode()
        client.close()


async def test_chunked_body_is_joined() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        chunked = b"4\r\nid=1\r\n6\r\n&a=%D0\r\n0\r\n\r\n"
        client.send(get("/c", "Transfer-Encoding: chunked", method="POST") + chunked)
        assert (await client.answer()).body == b"POST /c ? id=1&a=%D0"
        client.close()


async def test_body_above_the_limit_gets_413_and_closes() -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        client.send(post("/c", b"x" * 2000))
        answer = await client.answer()
        assert (answer.status, answer.headers["Connection"]) == (413, "close")
        assert await client.closed()
        chunked = await Client.connect(front.port)
        big = b"".join(b"200\r\n" + b"y" * 512 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        chunked.send(get("/c", "Transfer-Encoding: chunked", method="POST") + big)
        assert (await chunked.answer()).status == 413
        assert await chunked.closed()
    assert [r.too_large for r in recorder.requests] == [True, True]
    assert all(r.body == b"" for r in recorder.requests)


async def test_expect_continue_is_answered_before_the_body_or_refused_at_once() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/c", "Content-Length: 4", "Expect: 100-continue", method="POST"))
        async with asyncio.timeout(5):
            assert await client.reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(b"id=1")
        assert (await client.answer()).body == b"POST /c ? id=1"
        client.close()
        refused = await Client.connect(front.port)
        refused.send(get("/c", "Content-Length: 999999", "Expect: 100-continue", method="POST"))
        assert (await refused.answer()).status == 413  # without sending the body
        assert await refused.closed()


async def test_a_body_far_above_the_limit_is_not_read_to_its_end() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/c", "Content-Length: 100000000", method="POST") + b"z" * 20000)
        assert (await client.answer()).status == 413
        assert await client.closed()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),  # obsolete line folding
        (b"GET /\x00 HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400),
        (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 400),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 3000 + b"\r\n\r\n", 431),
    ],
)
async def test_refused_requests_get_a_clean_4xx_and_the_connection_closes(
    request_bytes: bytes, status: int
) -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        client.send(request_bytes)
        answer = await client.answer()
        assert (answer.status, answer.headers["Connection"]) == (status, "close")
        assert await client.closed()
    assert recorder.requests == []


async def test_a_refusal_after_pipelined_requests_comes_after_their_answers() -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        client.send(get("/later/1") + b"NOT HTTP\r\n\r\n")
        await recorder.holding("/later/1")
        recorder.release("/later/1")
        assert (await client.answer()).body == b"/later/1"
        assert (await client.answer()).status == 400
        assert await client.closed()


async def test_head_gets_headers_only() -> None:
    async with serving() as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/h", method="HEAD") + get("/after"))
        head = await client.answer(head=True)
        assert (head.status, head.headers["Content-Length"]) == (200, str(len(b"HEAD /h ? ")))
        assert (await client.answer()).body == b"GET /after ? "
        client.close()


async def test_paths_are_percent_decoded_and_queries_kept_raw() -> None:
    async with serving() as (front, recorder):
        client = await Client.connect(front.port)
        client.send(get("/smsc/tok%2D1?x=%D0%96+y&z#frag"))
        await client.answer()
        client.send(get("http://example.org/abs/path?q=1"))
        await client.answer()
        client.close()
    assert [(r.path, r.query) for r in recorder.requests] == [
        ("/smsc/tok-1", b"x=%D0%96+y&z"),
        ("/abs/path", b"q=1"),
    ]


async def test_a_request_that_does_not_arrive_in_time_gets_408() -> None:
    async with serving(Limits(read_timeout=1.0)) as (front, _):
        client = await Client.connect(front.port)
        client.send(b"POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        answer = await client.answer()  # within 1-3 s: the timeout is checked each second
        assert (answer.status, answer.headers["Connection"]) == (408, "close")
        assert await client.closed()


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async with serving(Limits(keepalive_timeout=1.0)) as (front, _):
        client = await Client.connect(front.port)
        client.send(get("/a"))
        await client.answer()
        assert await client.closed()
        assert front.connections == 0


async def test_a_waiting_answer_is_not_cut_by_the_timeouts() -> None:
    async with serving(Limits(read_timeout=1.0, keepalive_timeout=1.0)) as (front, recorder):
        client = await Client.connect(front.port)
        client.send(get("/later/slow"))
        await asyncio.sleep(2.5)
        recorder.release("/later/slow")
        assert (await client.answer()).body == b"/later/slow"
        client.close()


async def test_shutdown_finishes_the_requests_in_progress_then_closes() -> None:
    recorder = Recorder()
    front = HttpFront(recorder, LIMITS)
    await front.start("127.0.0.1", 0)
    idle = await Client.connect(front.port)
    busy = await Client.connect(front.port)
    busy.send(get("/later/1"))
    await recorder.holding("/later/1")
    stopping = asyncio.create_task(front.stop(drain_timeout=5))
    assert await idle.closed()
    await asyncio.sleep(0.1)
    assert not stopping.done()
    recorder.release("/later/1")
    assert (await busy.answer()).body == b"/later/1"
    assert await busy.closed()
    await stopping
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", front.port)


async def test_shutdown_gives_up_on_answers_after_the_drain_timeout() -> None:
    recorder = Recorder()
    front = HttpFront(recorder, LIMITS)
    await front.start("127.0.0.1", 0)
    client = await Client.connect(front.port)
    client.send(get("/later/never"))
    await recorder.holding("/later/never")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await front.stop(drain_timeout=0.3)
    assert loop.time() - started < 2
    assert await client.closed()
    recorder.release("/later/never")  # an answer for a closed connection goes nowhere


async def test_a_dispatcher_fault_is_a_500_for_that_request_only() -> None:
    def broken(request: HttpRequest, exchange: Exchange) -> None:
        raise RuntimeError("bug")

    front = HttpFront(broken, LIMITS)
    await front.start("127.0.0.1", 0)
    try:
        client = await Client.connect(front.port)
        client.send(get("/x"))
        answer = await client.answer()
        assert (answer.status, answer.headers["Connection"]) == (500, "close")
        assert await client.closed()
    finally:
        await front.stop(drain_timeout=1)
