"""Helpers shared by the simulator tests over TCP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.simulator import SmppSimulator
from gateway.smpp import codec
from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import Pdu

from .esme import PASSWORD, SYSTEM_ID, Esme

MakeSim = Callable[..., Awaitable[SmppSimulator]]
Connect = Callable[..., Awaitable[Esme]]
ROK = CommandStatus.ESME_ROK


async def read_pdu(reader: asyncio.StreamReader, wait_seconds: float = 2.0) -> Pdu:
    header = await asyncio.wait_for(reader.readexactly(4), wait_seconds)
    rest = await reader.readexactly(int.from_bytes(header, "big") - 4)
    return codec.decode(header + rest)


async def eventually(check: Callable[[], bool], wait_seconds: float = 2.0) -> None:
    """Poll a counter until ``check`` holds (the simulator's stats have no events)."""
    for _ in range(int(wait_seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


async def bound_esme(
    sim: SmppSimulator,
    connect: Connect,
    system_type: str = "",
    *,
    system_id: str = SYSTEM_ID,
    password: str = PASSWORD,
    **kwargs: object,
) -> Esme:
    esme = await connect(sim.port, **kwargs)
    response = await esme.bind(system_id, password, system_type=system_type)
    assert response.command_status == ROK
    return esme
