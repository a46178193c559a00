"""get.php?get_answers=1 and wait_call.php: the simulator answers as the seeds say (fmt 0-3,
every documented error, the per-script limits), and the client reads them, errors included,
staying inside the limits; the subscribers' SMS and calls reach the webhook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.http_api.circuit import CircuitState
from gateway.http_api.errors import (
    AuthorisationError,
    BlacklistedError,
    CostUnavailableError,
    HttpTransportError,
    InsufficientFundsError,
    ParametersError,
)
from gateway.settings.simulator_desk import CallDeskSettings, InboxSettings
from gateway.simulator.http_api import HttpApiSimulator
from tests.http_api.httpapi_support import (
    LOGIN,
    PASSWORD,
    FakeProvider,
    error,
    json_answer,
    mock_client,
    sim_config,
    wired,
)

NUMBERS = ("74950000101", "74950000102")


def fill(sim: HttpApiSimulator, count: int, **kw: Any) -> list[int]:
    return [sim.receive_sms(f"7900{i:07d}", f"reply {i}", **kw).incoming_id for i in range(count)]


async def raw_get(sim: HttpApiSimulator, script: str, **params: str) -> httpx.Response:
    data = {"login": LOGIN, "psw": PASSWORD, "charset": "utf-8", **params}
    async with httpx.AsyncClient() as raw:
        return await raw.post(f"{sim.base_url}/sys/{script}.php", data=data)


# -- get.php?get_answers=1 -----------------------------------------------------------------


async def test_answers_come_after_after_id_lowest_first_cnt_at_a_time() -> None:
    async with wired() as w:
        ids = fill(w.sim, 7)
        first = await w.client.get_answers(cnt=3)
        rest = await w.client.get_answers(after_id=first[-1].incoming_id, cnt=10)
        assert [a.incoming_id for a in first + rest] == ids
        assert await w.client.get_answers(after_id=ids[-1], cnt=10) == []
        one = first[0]
        assert (one.phone, one.message, one.to_phone) == ("79000000000", "reply 0", "79309990000")
        assert one.received_at(UTC) is not None


async def test_answers_for_one_of_the_accounts_numbers_and_within_the_hours_asked() -> None:
    clock = [1_700_000_000.0]
    async with HttpApiSimulator(sim_config(), wall_clock=lambda: clock[0]) as sim:
        sim.receive_sms("79000000001", "old", to_phone="79309990001")
        clock[0] += 3 * 3600
        sim.receive_sms("79000000002", "new", to_phone="79309990001")
        sim.receive_sms("79000000003", "other", to_phone="79309990002")
        recent = (await raw_get(sim, "get", get_answers="1", fmt="3", hour="2")).json()
        assert [a["message"] for a in recent] == ["new", "other"]
        mine = await raw_get(sim, "get", get_answers="1", fmt="3", to_phone="+79309990001")
        assert [a["message"] for a in mine.json()] == ["old", "new"]


@pytest.mark.parametrize(
    "params",
    [
        {"get_answers": "1", "cnt": "10001"},
        {"get_answers": "1", "hour": "169"},
        {"get_answers": "1", "after_id": "-4"},
        {"get_messages": "1"},
    ],
)
async def test_get_answers_error_1_for_bad_parameters(params: dict[str, str]) -> None:
    async with HttpApiSimulator(sim_config()) as sim:
        answer = await raw_get(sim, "get", fmt="3", **params)
    assert answer.json()["error_code"] == 1


async def test_get_answers_error_9_after_three_identical_requests_a_minute() -> None:
    async with HttpApiSimulator(sim_config()) as sim:
        codes = [
            (await raw_get(sim, "get", get_answers="1", fmt="3", cnt="5")).json() for _ in range(4)
        ]
        other = await raw_get(sim, "get", get_answers="1", fmt="3", cnt="6")
    assert [c if isinstance(c, list) else c["error_code"] for c in codes] == [[], [], [], 9]
    assert other.json() == []


async def test_get_answers_errors_2_and_4_reach_the_client_as_for_every_script() -> None:
    async with wired(password="wrong") as w:
        with pytest.raises(AuthorisationError):
            await w.client.get_answers(cnt=5)
        assert w.client.circuit.state(time.monotonic()) is CircuitState.OPEN
    async with wired({"auth_failures_to_block": 1}) as w:
        await raw_get(w.sim, "get", psw="wrong")
        answer = await raw_get(w.sim, "get", get_answers="1", fmt="3")
    assert answer.json()["error_code"] == 4


async def test_the_client_waits_instead_of_repeating_a_request_a_fourth_time() -> None:
    # A 1 s "minute": six identical requests (nothing new each time) take two windows.
    async with wired(answers_identical_per_window=2) as w:
        started = time.monotonic()
        for _ in range(6):
            assert await w.client.get_answers(after_id=0, cnt=10) == []
        assert time.monotonic() - started >= 2.0
        assert not w.sim.stats.errors


async def test_get_error_3_is_nothing_found_and_parks_nothing() -> None:
    provider = FakeProvider()
    provider.script("get", error(3))
    client, _, _ = mock_client(provider)
    async with client:
        assert await client.get_answers(after_id=5) == []
        assert client.circuit.state(time.monotonic()) is CircuitState.CLOSED
    assert provider.calls_to("get")[0].params["after_id"] == "5"


async def test_an_answer_of_another_shape_is_a_transport_error() -> None:
    provider = FakeProvider()
    provider.script("get", lambda call: json_answer({"id": 1}))
    client, _, _ = mock_client(provider, transport_attempts=1)
    async with client:
        with pytest.raises(HttpTransportError):
            await client.get_answers()


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("0", "id = 1, received = 14.11.2023 13:13:20, phone = 79000000000, message = hi, to_"),
        ("1", "1,14.11.2023 13:13:20,79000000000,79309990000,14.11.2023 13:13:20,hi"),
        ("2", "<sms_answers><sms><id>1</id><received>14.11.2023 13:13:20</received><phone>"),
        ("3", '[{"id":1,"received":"14.11.2023 13:13:20","phone":"79000000000","message":"hi"'),
    ],
)
async def test_get_answers_in_every_fmt(fmt: str, expected: str) -> None:
    # 1700000000 is 22:13:20 UTC; the account's zone here is UTC-9.
    config = sim_config(inbox=InboxSettings(utc_offset_hours=-9))
    async with HttpApiSimulator(config, wall_clock=lambda: 1_700_000_000.0) as sim:
        sim.receive_sms("79000000000", "hi")
        answer = await raw_get(sim, "get", get_answers="1", fmt=fmt)
    assert answer.text.startswith(expected)


# -- wait_call.php --------------------------------------------------------------------------


def calls(**overrides: Any) -> dict[str, Any]:
    return {"calls": CallDeskSettings(numbers=NUMBERS, **overrides)}


async def test_wait_call_gives_a_number_and_every_number_it_could_have_been() -> None:
    async with wired(calls()) as w:
        number = await w.client.wait_call("79001234567")
        assert number.call_to in NUMBERS
        assert number.all_phones == NUMBERS
        assert w.sim.centre.balances[LOGIN] == Decimal("999.00")


@pytest.mark.parametrize(
    ("sim", "phone", "cls"),
    [
        (calls(), "12", ParametersError),
        (calls(blacklist=("79001234567",)), "79001234567", BlacklistedError),
        (calls(refused_prefixes=("7900",)), "79001234567", CostUnavailableError),
        (calls() | {"balance": Decimal("0.50")}, "79001234567", InsufficientFundsError),
    ],
)
async def test_each_wait_call_error_code(sim: dict[str, Any], phone: str, cls: type[Any]) -> None:
    async with wired(sim) as w:
        with pytest.raises(cls):
            await w.client.wait_call(phone)
        money = cls is InsufficientFundsError
        # Only a lack of money parks the credential's sends; a refused phone does not.
        expected = CircuitState.PARKED if money else CircuitState.CLOSED
        assert w.client.circuit.state(time.monotonic()) is expected


async def test_wait_call_error_9_above_fifty_identical_and_the_client_keeps_below() -> None:
    async with HttpApiSimulator(sim_config(window_seconds=60.0, **calls())) as sim:
        answers = [
            (await raw_get(sim, "wait_call", phone="79001234567", fmt="3")).json()
            for _ in range(51)
        ]
        other = (await raw_get(sim, "wait_call", phone="79001234568", fmt="3")).json()
    assert [a.get("error_code") for a in answers] == [None] * 50 + [9]
    assert other["phone"] in NUMBERS
    async with wired(calls(identical_per_window=3), wait_call_per_phone_per_window=2) as w:
        started = time.monotonic()
        await asyncio.gather(*(w.client.wait_call("79001234567") for _ in range(5)))
        assert time.monotonic() - started >= 2.0
        assert not w.sim.stats.errors


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("0", "phone = 74950000102, all_phones = 74950000101,74950000102"),
        ("1", "74950000102,74950000101"),
        (
            "2",
            "<result><phone>74950000102</phone><all_phones><phone>74950000101</phone>"
            "<phone>74950000102</phone></all_phones></result>",
        ),
        ("3", '{"phone":"74950000102","all_phones":["74950000101","74950000102"]}'),
    ],
)
async def test_wait_call_in_every_fmt(fmt: str, expected: str) -> None:
    async with HttpApiSimulator(sim_config(**calls())) as sim:
        answer = await raw_get(sim, "wait_call", phone="79001234567", fmt=fmt)
        failed = await raw_get(sim, "wait_call", phone="1", fmt=fmt)
    assert answer.text == expected
    assert (
        failed.text
        == {
            "0": "ERROR = 1 (parameters error)",
            "1": "0,-1",
            "2": "<result><error>parameters error</error><error_code>1</error_code></result>",
            "3": '{"error":"parameters error","error_code":1}',
        }[fmt]
    )


# -- every script shares the login's concurrency --------------------------------------------


async def test_every_script_together_stays_below_fifteen_requests_at_once() -> None:
    # 10 sends + 3 status + 1 balance + 2 account requests could be 16; the login holds 14.
    sim = calls() | {"processing_seconds": 0.2}
    async with wired(sim, account_concurrency=4) as w:
        await asyncio.gather(
            *(w.client.send({"phones": f"790012345{i:02d}", "mes": "x"}) for i in range(12)),
            *(w.client.status(str(i), "79001234567") for i in range(4)),
            w.client.balance(),
            *(w.client.wait_call(f"790000000{i:02d}") for i in range(4)),
            *(w.client.get_answers(cnt=i + 1) for i in range(4)),
        )
    assert w.sim.stats.peak_in_flight["all"] == 14
    assert not w.sim.stats.errors


# -- the subscribers' SMS and calls reach the client's handler ------------------------------


@asynccontextmanager
async def handler() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    async def on_callback(request: web.Request) -> web.Response:
        received.append({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/smsc", on_callback)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/smsc?charset=utf-8", received
    finally:
        await runner.cleanup()


async def test_incoming_sms_and_calls_are_posted_to_the_handler() -> None:
    async with handler() as (url, received):  # noqa: SIM117 - the simulator needs the url
        async with HttpApiSimulator(sim_config(webhook_url=url, **calls())) as sim:
            incoming = sim.receive_sms("+79001234567", "Да", sms_id=4711)
            assert sim.place_call("79001234567") is None, "no number was given to this phone"
            await raw_get(sim, "wait_call", phone="79001234567", fmt="3")
            issued = sim.place_call("79001234567", callmenu="1#")
            await sim.join_callbacks()
            listed = (await raw_get(sim, "get", get_answers="1", fmt="3")).json()
    assert issued is not None
    assert issued.call_to == "74950000102"
    sms, call = received
    assert sms == {
        "phone": "79001234567",
        "mes": "Да",
        "to": "79309990000",
        "id": str(incoming.incoming_id),
        "sms_id": "4711",
        "sent": sms["time"],
        "time": sms["time"],
        "charset": "utf-8",  # the handler URL's own parameter comes back (webhook seed)
    }
    assert (call["waitcall"], call["phone"], call["callmenu"]) == ("1", "79001234567", "1#")
    # The provider records the call as an incoming message "[waitcall] " to the number called.
    assert [(a["message"], a["to_phone"]) for a in listed] == [
        ("Да", "79309990000"),
        ("[waitcall] ", "74950000102"),
    ]


async def test_subscribers_call_by_themselves_when_configured() -> None:
    config = calls(call_after_seconds=0.1, silent_prefixes=("7999",))
    async with handler() as (url, received):  # noqa: SIM117 - the simulator needs the url
        async with HttpApiSimulator(sim_config(webhook_url=url, **config)) as sim:
            await raw_get(sim, "wait_call", phone="79001234567", fmt="3")
            await raw_get(sim, "wait_call", phone="79991234567", fmt="3")
            await asyncio.sleep(0.4)
            await sim.join_callbacks()
    assert [(r["waitcall"], r["phone"]) for r in received] == [("1", "79001234567")]
