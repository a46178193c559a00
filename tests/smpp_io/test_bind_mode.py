"""SmppClient's bind modes against the simulator: a receiver bind takes DELIVER_SMs and
refuses to submit; a transceiver bind does both."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway.metrics import Metrics
from gateway.settings import SmppSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import ConnectionClosedError
from gateway.smpp.pdu import DeliverSm, DeliverSmResp, SubmitSm
from gateway.smpp_io.smpp_client import BindMode, SmppClient
from gateway.smpp_io.smpp_connection import SmppConnection


@pytest.mark.parametrize("mode", list(BindMode))
async def test_bind_mode_decides_what_the_bind_may_do(mode: BindMode) -> None:
    received: list[DeliverSm] = []

    def on_deliver(connection: SmppConnection, pdu: DeliverSm) -> None:
        received.append(pdu)
        connection.respond(pdu, DeliverSmResp())

    async with SmppSimulator(SimulatorSettings(accounts={"rx": "pw"})) as simulator:
        settings = dataclasses.replace(
            SmppSettings(), hosts=(f"127.0.0.1:{simulator.port}",), system_id="rx", password="pw"
        )
        client = SmppClient(settings, Metrics(), on_deliver, name="rx-0", mode=mode)
        runner = asyncio.create_task(client.run())
        try:
            await client.wait_bound(10)
            response = await simulator.deliver(
                "rx", DeliverSm(source_addr="7900", short_message=b"hi")
            )
            submit = SubmitSm(destination_addr="79001234567", short_message=b"x")
            if mode is BindMode.RECEIVER:
                with pytest.raises(ConnectionClosedError, match="receiver bind"):
                    await client.submit(submit)
            else:
                assert (await client.submit(submit)).message_id
        finally:
            await client.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    assert response.command_status == CommandStatus.ESME_ROK
    assert [pdu.short_message for pdu in received] == [b"hi"]
