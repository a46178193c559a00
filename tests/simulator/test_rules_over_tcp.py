"""The provider's rate, duplicate and flood rules as an ESME meets them over TCP."""

from __future__ import annotations

import asyncio

from gateway.simulator import SmppSimulator
from gateway.smpp.constants import CommandStatus

from .esme import Esme
from .helpers import ROK, Connect, MakeSim, bound_esme

THROTTLED = CommandStatus.ESME_RTHROTTLED


async def burst(esme: Esme, count: int, tag: str) -> list[int]:
    """``count`` submits at once (distinct texts and destinations), their statuses in order."""
    answers = await asyncio.gather(
        *(
            esme.submit(short_message=f"{tag} {i}".encode(), destination_addr=f"7999{i:07d}")
            for i in range(count)
        )
    )
    return [answer.command_status for answer in answers]


async def test_no_throttling_below_the_rate_and_throttling_above_it(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(rate_limit_per_second=50.0)  # a burst of 5
    esme = await bound_esme(sim, connect)
    for i in range(12):  # 25/s, half the limit
        await asyncio.sleep(0.04)
        assert (await esme.submit(short_message=b"paced %d" % i)).command_status == ROK
    await asyncio.sleep(0.1)  # the bucket fills up again
    statuses = await burst(esme, 20, "burst")
    accepted = statuses.count(ROK)
    assert 5 <= accepted <= 8  # the burst, and what trickles in while the ESME's window waits
    assert statuses.count(THROTTLED) == 20 - accepted
    assert sim.stats.throttled == 20 - accepted
    assert len(sim.submits) == 12 + accepted  # throttled messages are not accepted
    assert sim.stats.accepted_parts["gateway"] == 12 + accepted


async def test_connections_of_one_account_share_its_rate(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(rate_limit_per_second=10.0)  # a burst of 1
    first = await bound_esme(sim, connect, "MCON2")
    second = await bound_esme(sim, connect, "MCON2")
    assert (await first.submit(short_message=b"one")).command_status == ROK
    assert (await second.submit(short_message=b"two")).command_status == THROTTLED


async def test_rate_change_at_run_time_applies_at_once(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(rate_limit_per_second=1000.0, accounts={"alpha": "pw", "beta": "pw"})
    alpha = await bound_esme(sim, connect, system_id="alpha", password="pw")
    beta = await bound_esme(sim, connect, system_id="beta", password="pw")
    assert await burst(alpha, 10, "fast") == [ROK] * 10
    sim.faults.set_rate_limit(5.0, "alpha")
    assert sim.faults.rate_limit("alpha") == 5.0
    assert (await burst(alpha, 10, "slow")).count(ROK) == 1  # the bucket shrank to one
    assert await burst(beta, 10, "other") == [ROK] * 10
    sim.faults.set_rate_limit(None)  # every account, unlimited
    assert await burst(alpha, 50, "free") == [ROK] * 50
    sim.faults.set_rate_limit(5.0)
    assert (await burst(beta, 10, "all")).count(ROK) == 1


async def test_duplicate_is_refused_with_the_configured_status(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(duplicate_status=CommandStatus.ESME_RSYSERR)
    esme = await bound_esme(sim, connect)
    assert (await esme.submit(short_message=b"same")).command_status == ROK
    assert (await esme.submit(short_message=b"same")).command_status == CommandStatus.ESME_RSYSERR
    assert (await esme.submit(short_message=b"other")).command_status == ROK
    assert (await esme.submit(short_message=b"same", data_coding=8)).command_status == ROK
    assert sim.stats.duplicates_refused == 1
    assert [r.short_message for r in sim.submits] == [b"same", b"other", b"same"]


async def test_duplicate_default_status_is_submit_failed(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    await esme.submit()
    assert (await esme.submit()).command_status == CommandStatus.ESME_RSUBMITFAIL


async def test_flood_is_refused_with_the_configured_status(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(flood_limit=3, flood_status=CommandStatus.ESME_RX_P_APPN)
    esme = await bound_esme(sim, connect)
    for i in range(3):
        assert (await esme.submit(short_message=b"run %d" % i)).command_status == ROK
    refused = await esme.submit(short_message=b"one too many")
    assert refused.command_status == CommandStatus.ESME_RX_P_APPN
    other = await esme.submit(short_message=b"one too many", destination_addr="79990000000")
    assert other.command_status == ROK
    assert sim.stats.floods_refused == 1
