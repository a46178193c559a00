"""Binds the provider closes right after they were made: counted, and reported when they
keep coming. The policy on its own with plain times, then two clients of one login knocking
each other off on the simulator, as two replicas without MCONn do on the real provider."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import pytest

from gateway.metrics import Metrics
from gateway.settings import SmppSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.pdu import DeliverSm
from gateway.smpp_io.bind_churn import BindChurn
from gateway.smpp_io.smpp_client import SmppClient
from gateway.smpp_io.smpp_connection import SmppConnection


def test_a_bind_that_lasted_is_not_cut_short() -> None:
    churn = BindChurn(short_seconds=30, report_after=3)
    end = churn.lost(bound_at=100.0, now=130.0)
    assert (end.short, end.streak, end.report) == (False, 0, False)


def test_short_binds_are_reported_at_the_threshold_and_each_multiple() -> None:
    churn = BindChurn(short_seconds=30, report_after=3)
    ends = [churn.lost(bound_at=float(t), now=t + 2.0) for t in range(7)]
    assert [e.streak for e in ends] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.report for e in ends] == [False, False, True, False, False, True, False]


def test_a_bind_that_lasted_ends_the_streak() -> None:
    churn = BindChurn(short_seconds=30, report_after=2)
    churn.lost(0.0, 1.0)
    churn.lost(2.0, 3.0)
    assert not churn.lost(4.0, 100.0).short
    assert churn.lost(101.0, 102.0).streak == 1


def _ignore(connection: SmppConnection, pdu: DeliverSm) -> None:
    raise AssertionError("no DELIVER_SM expected")


async def test_two_binds_of_one_login_knock_each_other_off_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.smpp_io.smpp_client")
    async with SmppSimulator(SimulatorSettings(accounts={"shop": "pw"})) as simulator:
        settings = dataclasses.replace(
            SmppSettings(),
            hosts=(f"127.0.0.1:{simulator.port}",),
            system_id="shop",
            password="pw",
            reconnect_min_seconds=0.05,
            reconnect_max_seconds=0.2,
        )
        metrics = Metrics()
        # Two processes of one login without MCONn: each new bind closes the other one.
        clients = [SmppClient(settings, metrics, _ignore, name=f"smpp-{i}") for i in range(2)]
        runners = [asyncio.create_task(client.run()) for client in clients]
        try:
            await _until(lambda: "binds in a row lost within 30 s" in caplog.text, 30)
        finally:
            await asyncio.gather(*(client.stop() for client in clients))
            for runner in runners:
                runner.cancel()
            await asyncio.gather(*runners, return_exceptions=True)
    cut_short = sum(
        metrics.registry.get_sample_value("smsc_smpp_binds_cut_short_total", {"bind": c.name})
        or 0.0
        for c in clients
    )
    assert cut_short >= 3
    assert "another connection on login shop" in caplog.text


async def test_a_bind_left_alone_is_never_counted_as_cut_short() -> None:
    async with SmppSimulator(SimulatorSettings(accounts={"shop": "pw"})) as simulator:
        settings = dataclasses.replace(
            SmppSettings(), hosts=(f"127.0.0.1:{simulator.port}",), system_id="shop", password="pw"
        )
        metrics = Metrics()
        client = SmppClient(settings, metrics, _ignore, name="smpp-0")
        runner = asyncio.create_task(client.run())
        try:
            await client.wait_bound(10)
            await asyncio.sleep(0.5)
        finally:
            await client.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    sample = metrics.registry.get_sample_value(
        "smsc_smpp_binds_cut_short_total", {"bind": "smpp-0"}
    )
    assert sample in (None, 0.0)


async def _until(condition: Callable[[], bool], timeout_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
