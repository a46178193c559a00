"""The client and the transport against the simulator's HTTP API over real HTTP: every error
code path, fmt 0-3 and charsets, the ambiguous retry with injected faults, the callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import httpx
import orjson
import pytest
from aiohttp import web

from gateway.http_api.errors import (
    AuthorisationError,
    InsufficientFundsError,
    InvalidPhoneError,
    InvalidTimeError,
    IpBlockedError,
    MessageDeniedError,
    ParametersError,
    ProviderApiError,
    TooManyRequestsError,
    UndeliverableError,
)
from gateway.http_api.send_params import client_message_id
from gateway.simulator.http_api import HttpApiSimulator
from tests.http_api.httpapi_support import (
    APIKEY,
    LOGIN,
    PASSWORD,
    metric,
    send_request,
    sim_config,
    wired,
)


def send_params(**extra: str) -> dict[str, str]:
    return {"phones": "79001234567", "mes": "Hello", **extra}


@pytest.mark.parametrize(
    ("sim", "params", "cls", "with_id"),
    [
        ({}, {"phones": "79001234567"}, ParametersError, False),
        ({"balance": Decimal("0.50")}, send_params(), InsufficientFundsError, True),
        ({}, send_params(time="yesterday"), InvalidTimeError, False),
        ({}, send_params(mes="a forbidden word"), MessageDeniedError, True),
        ({"senders": ("Shop",)}, send_params(sender="Other"), MessageDeniedError, True),
        ({}, send_params(phones="12"), InvalidPhoneError, True),
        ({}, send_params(phones="99912345678"), UndeliverableError, True),
    ],
)
async def test_each_send_error_code_from_the_simulator(
    sim: dict[str, Any], params: dict[str, str], cls: type[ProviderApiError], with_id: bool
) -> None:
    async with wired(sim) as w:
        with pytest.raises(cls) as caught:
            await w.client.send(params | {"id": "7"})
        assert (caught.value.message_id is not None) is with_id
        assert w.sim.stats.sends_accepted == 0
        if with_id:  # an id was assigned: status.php knows the refused message
            answer = await w.client.status("7", params["phones"].lstrip("+"))
            assert answer.status in {20, 22, 23, 24}


async def test_wrong_credentials_give_error_2_and_five_of_them_block_the_ip_with_4() -> None:
    async with wired() as w, httpx.AsyncClient() as raw:
        for _ in range(5):
            answer = await raw.post(
                f"{w.sim.base_url}/sys/balance.php",
                data={"login": LOGIN, "psw": "wrong", "fmt": "3"},
            )
            assert answer.json()["error_code"] == 2
        with pytest.raises(IpBlockedError):
            await w.client.balance()  # the right credentials, from the blocked IP
        assert w.sim.stats.errors[("balance", 4)] == 1


async def test_the_client_reports_error_2_and_pauses_the_credential() -> None:
    async with wired(password="wrong") as w:
        with pytest.raises(AuthorisationError):
            await w.client.send(send_params(id="1"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        ((outcome, _),) = await w.transport.send(send_request(), urgent=False)
        assert loop.time() - started >= 0.25, "the paused credential waited before calling"
        assert (outcome.status, outcome.error and outcome.error.code) == (
            "rejected",
            "authorisation_error",
        )
        assert w.sim.stats.errors[("send", 2)] == 2


async def test_apikey_authenticates() -> None:
    async with wired(apikey=APIKEY) as w:
        assert (await w.client.balance()).currency == "RUR"


async def test_error_9_for_an_identical_send_within_the_window() -> None:
    async with wired() as w:
        await w.client.send(send_params(id="5"))
        with pytest.raises(TooManyRequestsError):
            await w.client.send(send_params(id="5"))
        await asyncio.sleep(1.0)  # the simulator's minute
        await w.client.send(send_params(id="5"))
        assert w.sim.stats.sends_accepted == 2


async def post(sim: HttpApiSimulator, script: str, raw: httpx.AsyncClient, **params: str) -> Any:
    data = {"login": LOGIN, "psw": PASSWORD, "fmt": "3", **params}
    return (await raw.post(f"{sim.base_url}/sys/{script}.php", data=data)).json()


async def test_error_9_for_15_concurrent_requests_and_5_concurrent_status_queries() -> None:
    async with wired({"processing_seconds": 0.3}) as w, httpx.AsyncClient() as raw:
        sends = [post(w.sim, "send", raw, phones=f"7900123{i:04d}", mes="x") for i in range(15)]
        answers = await asyncio.gather(*sends)
        assert [a.get("error_code") for a in answers].count(9) == 1
        queries = [post(w.sim, "status", raw, id=str(i), phone="79001234567") for i in range(5)]
        answers = await asyncio.gather(*queries)
        assert [a.get("error_code") for a in answers].count(9) == 1


async def test_error_9_for_status_and_balance_query_limits() -> None:
    async with wired() as w, httpx.AsyncClient() as raw:
        single = [await post(w.sim, "status", raw, id="1", phone="7900") for _ in range(6)]
        assert [a.get("error_code") for a in single] == [None] * 5 + [9]
        multi = [await post(w.sim, "status", raw, id="1,2", phone="7900,7901") for _ in range(2)]
        assert isinstance(multi[0], list)
        assert multi[1]["error_code"] == 9
        balance = [await post(w.sim, "balance", raw) for _ in range(11)]
        assert [a.get("error_code") for a in balance] == [None] * 10 + [9]
        assert (await post(w.sim, "status", raw, id="1,2", phone="7900"))["error_code"] == 1


async def test_the_client_stays_within_the_simulators_limits() -> None:
    async with wired({"processing_seconds": 0.05}) as w:
        await w.client.send(send_params(id="9"))
        await asyncio.gather(*(w.client.status("9", "79001234567") for _ in range(12)))
        await asyncio.gather(*(w.client.balance() for _ in range(8)))
        await asyncio.gather(
            *(w.client.statuses([("9", "79001234567"), ("10", "7900")]) for _ in range(2))
        )
        assert not [key for key in w.sim.stats.errors if key[1] == 9]
        assert w.sim.stats.peak_in_flight["status"] <= 3


@pytest.mark.parametrize("charset", ["utf-8", "windows-1251", "koi8-r"])
@pytest.mark.parametrize("fmt", ["0", "1", "2", "3"])
async def test_every_fmt_and_charset(fmt: str, charset: str) -> None:
    async with (
        HttpApiSimulator(sim_config(status_delay_seconds=0)) as sim,
        httpx.AsyncClient() as raw,
    ):
        base = {"login": LOGIN, "psw": PASSWORD, "fmt": fmt, "charset": charset}
        fields = urlencode(base | {"id": "11", "phones": "79001234567", "cost": "3"})
        content = f"{fields}&mes={quote_from_bytes('Привет'.encode(charset))}".encode()
        sent = await raw.post(
            f"{sim.base_url}/sys/send.php",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        status = await raw.get(
            f"{sim.base_url}/sys/status.php",
            params=base | {"id": "11", "phone": "79001234567", "all": "1"},
        )
        balance = await raw.get(f"{sim.base_url}/sys/balance.php", params=base)
        error = await raw.get(
            f"{sim.base_url}/sys/send.php", params=base | {"phones": "12", "mes": "x", "id": "12"}
        )
    assert sent.headers["content-type"].endswith(f"charset={charset}")
    answers = [r.content.decode(charset) for r in (sent, status, balance, error)]
    expected = {
        "0": [
            "OK - 1 SMS, ID - 11, COST - 1.95, BALANCE - 998.05",
            "Status = 1",
            "998.05",
            "ERROR = 7 (invalid number), ID - 12",
        ],
        "1": ["11,1,1.95,998.05", "1,", "998.05", "12,-7"],
        "2": [
            "<result><id>11</id><cnt>1</cnt>",
            "<sms><status>1</status>",
            "<balance><balance>998.05",
            "<error_code>7</error_code><id>12</id>",
        ],
        "3": [
            '{"id":11,"cnt":1,"cost":"1.95","balance":"998.05"}',
            '{"status":1,',
            '{"balance":"998.05"}',
            '"error_code":7,"id":12}',
        ],
    }[fmt]
    for answer, start in zip(answers, expected, strict=True):
        assert start in answer
    assert "Привет" in answers[1], "the text came back as it was sent, in the request's charset"


async def test_multi_id_status_in_every_fmt() -> None:
    config = sim_config(status_delay_seconds=0, window_seconds=0.01)
    async with HttpApiSimulator(config) as sim, httpx.AsyncClient() as raw:
        await post(sim, "send", raw, id="3", phones="79001234567,79001234568", mes="hi")
        answers = {}
        for fmt in "0123":
            await asyncio.sleep(0.02)
            params = {
                "login": LOGIN,
                "psw": PASSWORD,
                "fmt": fmt,
                "id": "3,3,4",
                "phone": "79001234567,79001234568,7900",
            }
            answers[fmt] = (await raw.get(f"{sim.base_url}/sys/status.php", params=params)).text
    assert [item["status"] for item in orjson.loads(answers["3"])] == [1, 1, -3]
    assert answers["1"].splitlines()[2].startswith("-3")
    assert answers["2"].startswith("<list><sms>")
    assert answers["0"].count("Status = ") == 3


async def test_an_accepted_send_whose_answer_is_lost_is_found_by_status_not_resent() -> None:
    async with wired(read_timeout_seconds=0.3) as w:
        w.sim.faults.delay_responses(1.0, count=1)
        ((outcome, attempts),) = await w.transport.send(send_request("amb-1"), urgent=False)
        assert outcome.status == "accepted"
        assert outcome.message_ids == (str(client_message_id("amb-1")),)
        assert (attempts, w.sim.stats.sends_accepted) == (1, 1)
        assert metric(w.metrics, "smsc_http_ambiguous_sends_total", resolution="found") == 1


async def test_a_timed_out_send_still_being_processed_gets_9_on_retry_and_is_sent_once() -> None:
    async with wired(read_timeout_seconds=0.2) as w:
        w.sim.faults.delay_processing(0.6, count=1)
        ((outcome, attempts),) = await w.transport.send(send_request("amb-2"), urgent=False)
        assert outcome.status == "accepted"
        assert w.sim.stats.errors[("send", 9)] >= 1, "a retry met the identical-request rule"
        assert attempts >= 2
        assert w.sim.stats.sends_accepted == 1
        assert len(w.sim.centre.messages) == 1


async def test_a_5xx_after_processing_is_found_by_status_and_not_resent() -> None:
    async with wired() as w:
        w.sim.faults.fail_requests(503, count=1, processed=True)
        ((outcome, attempts),) = await w.transport.send(send_request("amb-3"), urgent=False)
        assert (outcome.status, attempts, w.sim.stats.sends_accepted) == ("accepted", 1, 1)


async def test_a_5xx_before_processing_is_sent_again_once_status_says_not_found() -> None:
    async with wired() as w:
        w.sim.faults.fail_requests(502, count=1)
        ((outcome, attempts),) = await w.transport.send(send_request("amb-4"), urgent=False)
        assert (outcome.status, attempts, w.sim.stats.sends_accepted) == ("accepted", 2, 1)


async def test_transport_outcomes_for_the_simulators_refusals() -> None:
    async with wired(
        {"balance": Decimal("0.10")}, funds_park_max_seconds=0.3, give_up_after_seconds=0.2
    ) as w:
        ((outcome, _),) = await w.transport.send(send_request("funds", text="Hello"), urgent=False)
        assert (outcome.status, outcome.error and outcome.error.code) == (
            "failed",
            "insufficient_funds",
        )
    async with wired() as w:
        ((outcome, _),) = await w.transport.send(
            send_request("deny", text="forbidden"), urgent=False
        )
        assert (outcome.status, outcome.error and outcome.error.code) == (
            "rejected",
            "message_denied",
        )
        ((outcome, _),) = await w.transport.send(
            send_request("undeliv", "99900000001"), urgent=False
        )
        assert (outcome.status, outcome.error and outcome.error.code) == (
            "rejected",
            "cannot_deliver",
        )


@asynccontextmanager
async def handler_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/smsc", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/smsc", received
    finally:
        await runner.cleanup()


async def test_messages_sent_over_http_are_reported_to_the_webhook() -> None:
    async with handler_server() as (url, received):  # noqa: SIM117 - wired needs the url
        async with wired({"webhook_url": f"{url}?charset=utf-8", "status_delay_seconds": 0.1}) as w:
            request = send_request("cb-1", "79001234567", "79001234568", comment="order 5")
            await w.transport.send(request, urgent=False)
            for _ in range(50):
                if len(received) == 2:
                    break
                await asyncio.sleep(0.05)
            await w.sim.join_callbacks()
    message_id = str(client_message_id("cb-1"))
    assert sorted(r["phone"] for r in received) == ["79001234567", "79001234568"]
    assert all(
        r["id"] == message_id and r["status"] == "1" and r["cmt"] == "order 5" for r in received
    )
