"""``smsc-gateway numbers``: every command run as a process against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from gateway.simulator.http_api import HttpApiSimulator
from tests.account.accountkit import raw_call
from tests.account.clikit import cli, cli_env
from tests.http_api.httpapi_support import sim_config

FREE, OTHER = "79010000001", "79010000002"


@pytest.fixture
async def sim() -> AsyncIterator[HttpApiSimulator]:
    async with HttpApiSimulator(sim_config()) as simulator:
        yield simulator


async def test_available_as_a_table_and_as_json(sim: HttpApiSimulator) -> None:
    now = sim.numbers.current_cost(sim.config.account.rentable_numbers[0])
    shown = await cli(sim, "numbers", "available")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].split() == ["PHONE", "TYPE", "COST", "NOW", "COST", "PER", "MONTH", "INFO"]
    assert lines[1].split() == [FREE, "virtual", str(now), "300.00", "MTS,", "SMS"]
    assert lines[3].split()[:3] == ["79010000003", "SIM", "hosting"]
    listed = await cli(sim, "numbers", "available", "--json")
    assert listed.json() == [
        {
            "phone": n.phone,
            "type": "SIM hosting" if n.type == 2 else "virtual",
            "cost_now": str(sim.numbers.current_cost(n)),
            "cost_per_month": f"{n.cost:.2f}",
            "info": n.info,
        }
        for n in sim.config.account.rentable_numbers
    ]


async def test_buy_asks_first_and_spends_nothing_unless_told_yes(sim: HttpApiSimulator) -> None:
    before = sim.centre.balances["gateway"]
    now = sim.numbers.current_cost(sim.config.account.rentable_numbers[0])
    for answer in (b"n\n", b""):  # a no, and no answer at all
        declined = await cli(sim, "numbers", "buy", FREE, stdin=answer)
        assert declined.code == 1
        question = f"Rent {FREE} for {now} now (then 300.00 a month, renewed monthly)? [y/N]"
        assert declined.err.startswith(question)
        assert declined.err_lines[-1] == "smsc-gateway: not rented: not confirmed"
        assert declined.out == ""
    assert sim.numbers.rented == {}
    bought = await cli(sim, "numbers", "buy", f"+{FREE}", stdin=b"y\n")
    assert bought.code == 0, bought.err
    assert bought.out.splitlines() == ["PHONE        COST    RENEWED", f"{FREE}  {now}  yes"]
    assert sim.centre.balances["gateway"] == before - now
    assert not sim.numbers.rented[FREE].noprolong


async def test_buy_with_yes_and_json_does_not_ask(sim: HttpApiSimulator) -> None:
    bought = await cli(sim, "numbers", "buy", OTHER, "--no-prolong", "--yes", "--json")
    assert bought.code == 0, bought.err
    assert bought.err == ""
    cost = sim.numbers.current_cost(sim.config.account.rentable_numbers[1])
    assert bought.json() == {"phone": OTHER, "cost": str(cost), "renewed": False}
    assert sim.numbers.rented[OTHER].noprolong


async def test_list_and_prolong_on_asks_off_does_not(sim: HttpApiSimulator) -> None:
    assert (await cli(sim, "numbers", "list")).out == "no dedicated numbers rented\n"
    await cli(sim, "numbers", "buy", FREE, "--yes", "--no-prolong")
    listed = await cli(sim, "numbers", "list")
    assert listed.out.splitlines()[1].split() == [FREE, "virtual", "300.00", "no", "MTS,", "SMS"]
    declined = await cli(sim, "numbers", "prolong", FREE, "on", stdin=b"no\n")
    assert declined.code == 1
    assert declined.err.startswith(f"Renew {FREE} every month (300.00 a month)? [y/N]")
    assert sim.numbers.rented[FREE].noprolong
    renewed = await cli(sim, "numbers", "prolong", FREE, "on", "--json", stdin=b"yes\n")
    assert renewed.json() == {"phone": FREE, "renewed": True}
    assert not sim.numbers.rented[FREE].noprolong
    stopped = await cli(sim, "numbers", "prolong", FREE, "off")
    assert (stopped.code, stopped.err) == (0, "")
    assert stopped.out.splitlines()[1].split() == [FREE, "no"]
    assert (await cli(sim, "numbers", "list", "--json")).json() == [
        {
            "phone": FREE,
            "type": "virtual",
            "cost_per_month": "300.00",
            "renewed": False,
            "info": "MTS, SMS",
        }
    ]


async def test_each_provider_error_is_one_clear_line_and_exit_1(sim: HttpApiSimulator) -> None:
    sim.centre.balances["gateway"] = Decimal("1.00")
    poor = await cli(sim, "numbers", "buy", FREE, "--yes")
    assert (poor.code, poor.out) == (1, "")
    assert poor.err_lines == [
        "smsc-gateway: receive_phones.php refused with error 3: not enough money on the account"
        " to rent the number (the provider said: not enough money to rent the number)"
    ]
    taken = await cli(sim, "numbers", "prolong", "79990000000", "off")
    assert taken.err_lines == [
        "smsc-gateway: receive_phones.php refused with error 1: error in the parameters (is the"
        " number free to rent, or rented by you?) (the provider said: parameters error)"
    ]
    assert (await cli(sim, "numbers", "buy", "79990000000", "--yes")).err_lines == [
        "smsc-gateway: 79990000000 is not free to rent (see `numbers available`)"
    ]
    wrong = await cli(sim, "numbers", "list", env=cli_env(sim, GATEWAY_HTTP_API_PASSWORD="bad"))
    assert wrong.err_lines == [
        "smsc-gateway: receive_phones.php refused with error 2: wrong login or password, or this"
        " IP address is not allowed for the account (the provider said: authorise error)"
    ]


async def test_usage_and_configuration_errors_exit_2(sim: HttpApiSimulator) -> None:
    bad_phone = await cli(sim, "numbers", "buy", "not-a-phone")
    assert bad_phone.code == 2
    assert "'not-a-phone' is not a phone number" in bad_phone.err_lines[-1]
    no_credential = await cli(
        sim,
        "numbers",
        "list",
        env=cli_env(sim, GATEWAY_HTTP_API_LOGIN="", GATEWAY_HTTP_API_PASSWORD=""),
    )
    assert no_credential.code == 2
    assert no_credential.err_lines == [
        "smsc-gateway: GATEWAY_HTTP_API: set apikey, or login and password"
    ]
    unreachable = await cli(
        sim, "numbers", "list", env=cli_env(sim, GATEWAY_HTTP_API_BASE_URLS="http://127.0.0.1:9")
    )
    assert unreachable.code == 1
    assert len(unreachable.err_lines) == 1
    assert unreachable.err.startswith("smsc-gateway: no answer from the provider: ConnectError")


async def test_error_9_when_another_process_used_up_the_minute() -> None:
    # A "minute" long enough for a process to start on a busy machine.
    async with HttpApiSimulator(sim_config(window_seconds=30.0)) as sim:
        for _ in range(2):
            await raw_call(sim, "receive_phones", get="1")
        busy = await cli(sim, "numbers", "available")
    assert (busy.code, busy.out) == (1, "")
    assert busy.err_lines == [
        "smsc-gateway: receive_phones.php refused with error 9: more than two identical requests"
        " within a minute: try again in a minute (the provider said: duplicate request, wait a"
        " minute)"
    ]
