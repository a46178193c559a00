"""Faults injected into a running simulator: drop, delay, withhold, refuse binds."""

from __future__ import annotations

import asyncio

import pytest

from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import ConnectionClosedError, ResponseTimeoutError
from gateway.smpp.pdu import BindTransceiverResp

from .helpers import ROK, Connect, MakeSim, bound_esme, eventually


async def test_drop_one_account_then_everyone(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(accounts={"alpha": "pw", "beta": "pw"})
    alpha = await bound_esme(sim, connect, system_id="alpha", password="pw")
    beta = await bound_esme(sim, connect, system_id="beta", password="pw")
    assert sim.faults.drop_connections("alpha") == 1
    await asyncio.wait_for(alpha.conn.wait_closed(), 2)
    assert alpha.conn.close_reason == "peer closed the connection"  # no unbind
    assert not beta.conn.closed
    assert sim.faults.drop_connections() == 1
    await asyncio.wait_for(beta.conn.wait_closed(), 2)
    assert sim.stats.connections_dropped == 2
    await eventually(lambda: sim.bound() == 0)
    again = await bound_esme(sim, connect, system_id="alpha", password="pw")  # binds work
    assert (await again.submit()).command_status == ROK


async def test_dropped_reports_reach_the_next_bind(sim: SmppSimulator, connect: Connect) -> None:
    silent = await bound_esme(sim, connect, answer=lambda pdu: None)
    await silent.submit(registered_delivery=1)
    await silent.next_deliver()
    sim.faults.drop_connections()
    await asyncio.wait_for(silent.conn.wait_closed(), 2)
    again = await bound_esme(sim, connect)
    assert (await again.next_deliver()).short_message.startswith(b"id:100000001 ")


async def test_delayed_responses(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect)
    sim.faults.delay_responses(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await esme.submit(short_message=b"slow")).command_status == ROK
    assert loop.time() - started >= 0.29
    sim.faults.delay_responses(0)
    started = loop.time()
    assert (await esme.submit(short_message=b"fast")).command_status == ROK
    assert loop.time() - started < 0.2


async def test_delayed_bind_response(sim: SmppSimulator, connect: Connect) -> None:
    sim.faults.delay_responses(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bound_esme(sim, connect)
    assert loop.time() - started >= 0.19


async def test_withheld_submits_are_never_answered(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect, response_timeout_seconds=0.2)
    sim.faults.withhold_responses()
    with pytest.raises(ResponseTimeoutError):
        await esme.submit(short_message=b"lost on the way in")
    assert list(sim.submits) == []
    sim.faults.withhold_responses(accept=True)
    with pytest.raises(ResponseTimeoutError):
        await esme.submit(short_message=b"answer lost")
    assert [r.short_message for r in sim.submits] == [b"answer lost"]
    sim.faults.withhold_responses(on=False)
    assert (await esme.submit(short_message=b"answer lost")).command_status != ROK  # duplicate
    assert (await esme.submit(short_message=b"answered")).command_status == ROK
    assert sim.stats.submits_withheld == 2
    assert not esme.conn.closed


async def test_refused_binds(sim: SmppSimulator, connect: Connect) -> None:
    sim.faults.refuse_binds()
    esme = await connect(sim.port)
    answer = await esme.bind()  # the right credentials
    assert isinstance(answer, BindTransceiverResp)
    assert answer.command_status == CommandStatus.ESME_RBINDFAIL
    await asyncio.wait_for(esme.conn.wait_closed(), 2)
    sim.faults.refuse_binds(CommandStatus.ESME_RINVSYSTYP)
    other = await connect(sim.port)
    assert (await other.bind()).command_status == CommandStatus.ESME_RINVSYSTYP
    sim.faults.clear()
    await bound_esme(sim, connect)
    assert (sim.stats.binds_failed, sim.stats.binds_ok) == (2, 1)


async def test_fault_arguments_are_checked(sim: SmppSimulator) -> None:
    with pytest.raises(ValueError, match="negative"):
        sim.faults.delay_responses(-1)
    with pytest.raises(ValueError, match="error status"):
        sim.faults.refuse_binds(0)
    with pytest.raises(ValueError, match="positive"):
        sim.faults.set_rate_limit(0)


def test_rate_faults_need_a_started_simulator() -> None:
    sim = SmppSimulator(SimulatorSettings())
    sim.faults.refuse_binds()  # switches can be set before start
    with pytest.raises(RuntimeError, match="not started"):
        sim.faults.set_rate_limit(10.0)


async def test_stop_with_delayed_answers_leaves_no_tasks(connect: Connect) -> None:
    before = asyncio.all_tasks()
    sim = SmppSimulator(SimulatorSettings(rate_limit_per_second=None))
    await sim.start()
    esme = await bound_esme(sim, connect, response_timeout_seconds=5.0)
    sim.faults.delay_responses(10.0)
    pending = asyncio.create_task(esme.submit())
    await asyncio.sleep(0.05)
    await sim.stop()
    with pytest.raises(ConnectionClosedError):  # unbound before the answer was due
        await pending
    await asyncio.wait_for(esme.task, 2)
    assert asyncio.all_tasks() == before
