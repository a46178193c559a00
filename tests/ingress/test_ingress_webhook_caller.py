"""The simulator's webhook caller: requests built as the seed describes, and the retry
schedule (every 4 minutes, 50 attempts, unless 200 or 404) against a real HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web

from gateway.ingress.callback import (
    IncomingCallback,
    StatusCallback,
    WaitcallCallback,
    parse_callback,
)
from gateway.ingress.params import CallbackRequest, Rejection
from gateway.ingress.signature import Verdict, check_signature
from gateway.simulator.webhook import MAX_ATTEMPTS, RETRY_INTERVAL_SECONDS, WebhookCaller
from gateway.simulator.webhook_request import (
    HandlerUrl,
    build_request,
    incoming_notice,
    status_notice,
    waitcall_notice,
)

SECRET = "abc-123_X"


def test_the_seeds_schedule_is_the_default() -> None:
    assert (RETRY_INTERVAL_SECONDS, MAX_ATTEMPTS) == (240.0, 50)


def test_bang_parameters_go_by_get_the_rest_by_post() -> None:
    handler = HandlerUrl.parse(f"https://gw.example/cb/T0k!param1&p2=v2?param3&p4=4&sha1={SECRET}")
    request = build_request(handler, status_notice("11", "79990000001", 1))
    url = urlsplit(request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://gw.example/cb/T0k"
    assert parse_qsl(url.query, keep_blank_values=True) == [("param1", ""), ("p2", "v2")]
    posted = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    signed = f"11:79990000001:1:{SECRET}".encode()
    expected = hashlib.sha1(signed, usedforsecurity=False).hexdigest()
    assert posted == {
        "id": "11",
        "phone": "79990000001",
        "status": "1",
        "param3": "",
        "p4": "4",
        "sha1": expected,
    }
    assert request.content_type == "application/x-www-form-urlencoded"


def test_err_zero_is_left_out_as_the_seed_says() -> None:
    notice = status_notice("1", "7", 1, err=0, cost="1.0")
    assert dict(notice.fields) == {"id": "1", "phone": "7", "status": "1", "cost": "1.0"}


@pytest.mark.parametrize("fmt", ["", "&fmt=2", "&fmt=3"])
@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-8"])
@pytest.mark.parametrize("algorithm", ["md5", "sha1", "crc32"])
def test_every_format_charset_and_signature_reads_back(
    fmt: str, charset: str, algorithm: str
) -> None:
    handler = HandlerUrl.parse(
        f"http://h/cb!tenant=Север?charset={charset}{fmt}&{algorithm}={SECRET}"
    )
    notices = [
        status_notice("11", "79990000001", 20, err=1, cmt="Комментарий"),
        incoming_notice("79990000001", "Ответ: да, ёлки", "79000000001", id=5),
        waitcall_notice("79990000001", 1700000000, callmenu="1#"),
    ]
    for notice, kind in zip(
        notices, (StatusCallback, IncomingCallback, WaitcallCallback), strict=True
    ):
        request = build_request(handler, notice)
        callback = parse_callback(
            CallbackRequest("POST", request.url.partition("?")[2].encode(), request.body),
            "windows-1251",
        )
        assert isinstance(callback, kind), callback
        assert not isinstance(callback, Rejection)
        for name, value in notice.fields:
            assert callback.params.values[name] == value
        assert callback.params.values["tenant"] == "Север"
        assert check_signature(callback.params, SECRET).verdict is Verdict.VALID


def test_xml_and_json_bodies_have_the_documented_shapes() -> None:
    notice = incoming_notice("7999", "<b>&", "1")
    xml = build_request(HandlerUrl.parse("http://h/cb?fmt=2&charset=utf-8"), notice)
    root = ET.fromstring(xml.body)  # noqa: S314 - our own document
    assert root.tag == "data"
    assert {c.tag: c.text for c in root}["mes"] == "<b>&"
    as_json = build_request(HandlerUrl.parse("http://h/cb?fmt=3&charset=utf-8"), notice)
    assert json.loads(as_json.body)["mes"] == "<b>&"
    assert (xml.content_type, as_json.content_type) == ("application/xml", "application/json")


@dataclass
class Script:
    """A handler answering the listed statuses in turn (then the last one again)."""

    answers: list[int]
    seen: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(await request.read())
        status = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return web.Response(status=status)


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    runners: list[web.AppRunner] = []

    async def start(script: Script) -> str:
        app = web.Application()
        app.router.add_post("/cb", script.handle)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = next(a for a in runner.addresses if isinstance(a, tuple))[1]
        return f"http://127.0.0.1:{port}/cb"

    yield start
    for runner in runners:
        await runner.cleanup()


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("answers", "outcome", "attempts"),
    [
        ([200], "delivered", 1),
        ([500, 503, 403, 200], "delivered", 4),
        ([404], "dropped", 1),
        ([502, 404], "dropped", 2),
        ([500], "gave_up", MAX_ATTEMPTS),
        ([301], "gave_up", MAX_ATTEMPTS),
    ],
)
async def test_retries_every_interval_until_200_or_404(
    serve: object, answers: list[int], outcome: str, attempts: int
) -> None:
    script = Script(answers)
    url = await serve(script)  # type: ignore[operator]
    sleeps = Sleeps()
    async with WebhookCaller(url, sleep=sleeps) as caller:
        result = await caller.deliver(status_notice("1", "7999", 1))
    assert (result.outcome, result.attempts) == (outcome, attempts)
    assert len(script.seen) == attempts
    assert len(set(script.seen)) == 1  # the same request every time
    assert sleeps.slept == [RETRY_INTERVAL_SECONDS] * (attempts - 1)


async def test_no_answer_counts_as_a_failure_and_is_retried() -> None:
    sleeps = Sleeps()
    async with WebhookCaller("http://127.0.0.1:9/cb", max_attempts=3, sleep=sleeps) as caller:
        result = await caller.deliver(waitcall_notice("7999", 1))
    assert (result.outcome, result.answers) == ("gave_up", (None, None, None))
    assert caller.stats.answers[None] == 3


async def test_background_deliveries_with_a_short_real_interval(serve: object) -> None:
    script = Script([503, 200])
    url = await serve(script)  # type: ignore[operator]
    async with WebhookCaller(url, retry_interval_seconds=0.05) as caller:
        for i in range(5):
            caller.submit(status_notice(str(i), "7999", 1))
        results = await caller.join()
    assert sorted(r.outcome for r in results) == ["delivered"] * 5
    assert caller.stats.delivered == 5
    assert caller.stats.attempts == 6  # the first answer was 503, the rest 200
