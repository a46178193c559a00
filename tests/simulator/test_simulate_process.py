"""``smsc-gateway simulate`` as a process: SMPP and the HTTP API on their own ports, one set of
accounts, the handler called, the account commands answered."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
from aiohttp import web

from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import SubmitSmResp
from tests.simulator.esme import Esme
from tests.simulator.simulate_support import START_SECONDS, simulate_process, stop_process

LOGIN, PASSWORD = "shop", "s3cret"


@dataclass
class Handler:
    """The client's handler: every callback's parameters, in arrival order."""

    calls: list[dict[str, str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def take(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = dict(request.query) | {k: v for k, v in form.items() if isinstance(v, str)}
        self.calls.append(params)
        self.arrived.set()
        return web.Response(text="OK")

    async def wait_for(self, key: str, value: str, seconds: float = 10.0) -> dict[str, str]:
        async with asyncio.timeout(seconds):
            while True:
                found = [c for c in self.calls if c.get(key) == value]
                if found:
                    return found[0]
                self.arrived.clear()
                await self.arrived.wait()


@dataclass(frozen=True)
class Simulate:
    smpp_port: int
    http_url: str
    handler: Handler

    async def call(self, script: str, **params: str) -> object:
        data = {"login": LOGIN, "psw": PASSWORD, "fmt": "3", "charset": "utf-8", **params}
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(f"{self.http_url}/sys/{script}.php", data=data)
        assert response.status_code == 200
        return orjson.loads(response.content)


@contextlib.asynccontextmanager
async def handler_server() -> AsyncIterator[tuple[Handler, str]]:
    handler = Handler()
    app = web.Application()
    app.router.add_post("/smsc/callback", handler.take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(s[1] for s in runner.addresses if isinstance(s, tuple))
    try:
        yield handler, f"http://127.0.0.1:{port}/smsc/callback"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def simulate(**settings: str) -> AsyncIterator[Simulate]:
    """``smsc-gateway simulate`` with ``settings`` (GATEWAY_SIMULATOR_*), calling a handler."""
    async with handler_server() as (handler, url):
        given = {f"GATEWAY_SIMULATOR_{k.upper()}": v for k, v in settings.items()}
        given |= {
            "GATEWAY_SIMULATOR_ACCOUNTS": f"{LOGIN}:{PASSWORD}",
            "GATEWAY_SIMULATOR_HTTP_API_WEBHOOK_URL": url,
        }
        async with simulate_process(given) as (smpp, http):
            yield Simulate(smpp, http, handler)


async def test_simulate_serves_smpp_and_the_http_api_with_the_same_accounts() -> None:
    async with simulate(dlr_delay_seconds="0.1") as sim:
        esme = await Esme.connect(sim.smpp_port)
        try:
            bound = await esme.bind(LOGIN, PASSWORD)
            assert bound.command_status == CommandStatus.ESME_ROK
            submitted = await esme.submit(registered_delivery=1)
            assert isinstance(submitted, SubmitSmResp)
            assert submitted.message_id
            report = await esme.next_deliver(wait_seconds=10.0)
            assert f"id:{submitted.message_id} ".encode() in report.short_message
        finally:
            await esme.close()
        sent = await sim.call("send", phones="79001234567", mes="hello")
        assert isinstance(sent, dict)
        assert sent["cnt"] == 1
        balance = await sim.call("balance")
        assert isinstance(balance, dict)
        assert float(balance["balance"]) < 1000
        status = await sim.handler.wait_for("id", str(sent["id"]))
        assert status["phone"] == "79001234567"
        assert status["status"] == "1"


async def test_simulate_issues_numbers_subscribers_call_and_the_handler_hears_it() -> None:
    async with simulate(http_api_call_after_seconds="0.2") as sim:
        issued = await sim.call("wait_call", phone="79005550000")
        assert isinstance(issued, dict)
        assert issued["phone"] in issued["all_phones"]
        call = await sim.handler.wait_for("waitcall", "1")
        assert call["phone"] == "79005550000"
        answers = await sim.call("get", get_answers="1")
        assert isinstance(answers, list)
        assert [(a["phone"], a["message"]) for a in answers] == [("79005550000", "[waitcall] ")]
        # The account's blacklist, through phones.php, is the one wait_call.php refuses.
        await sim.call("phones", add_black="1", phone="79005550001", type="1")
        refused = await sim.call("wait_call", phone="79005550001")
        assert refused == {"error": "phone is in the black list", "error_code": 5}


async def test_simulate_writes_incoming_sms_for_the_poller_and_the_handler() -> None:
    async with simulate(http_api_incoming_rate_per_second="20") as sim:
        first = await sim.handler.wait_for("to", "79001234567")
        answers: object = []
        async with asyncio.timeout(10.0):
            while not answers:
                answers = await sim.call("get", get_answers="1")
                await asyncio.sleep(0.2)
        assert isinstance(answers, list)
        assert str(first["id"]) in {str(a["id"]) for a in answers}
        assert {a["to_phone"] for a in answers} == {"79001234567"}


async def test_the_account_commands_run_against_simulate() -> None:
    async with simulate() as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env |= {
            "GATEWAY_HTTP_API_BASE_URLS": sim.http_url,
            "GATEWAY_HTTP_API_LOGIN": LOGIN,
            "GATEWAY_HTTP_API_PASSWORD": PASSWORD,
        }
        command = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "numbers", "available", "--json"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(command.communicate(), 60.0)
        assert command.returncode == 0, err.decode()
        rentable = orjson.loads(out)
        assert [n["phone"] for n in rentable][:1] == ["79010000001"]


async def test_simulate_without_the_http_api_serves_smpp_only() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_SIMULATOR_HTTP_API_PORT"] = ""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway", "simulate"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), START_SECONDS)
    finally:
        await stop_process(process)
    lines = [first.decode(), *(await process.stdout.read()).decode().splitlines()]
    assert lines[0].startswith("SMPP simulator listening on ")
    assert not [line for line in lines if "HTTP API" in line]
