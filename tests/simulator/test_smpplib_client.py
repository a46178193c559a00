"""The simulator against smpplib, an SMPP client no one here wrote (synchronous, in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions

from gateway.simulator import SmppSimulator

MakeSim = Callable[..., Awaitable[SmppSimulator]]


def _client(port: int) -> Any:
    # The vendor TLVs 0x2000-0x2003 are unknown to smpplib; the spec says skip them.
    return smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)


def _submit_and_wait_for_report(port: int) -> tuple[list[Any], list[Any], Any]:
    client = _client(port)
    sent: list[Any] = []
    reports: list[Any] = []

    # smpplib calls the handlers as handler(pdu=...); returning None answers ESME_ROK.
    def on_sent(pdu: Any) -> None:
        sent.append(pdu)

    def on_received(pdu: Any) -> None:
        reports.append(pdu)

    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_received)
    client.connect()
    try:
        client.bind_transceiver(system_id="gateway", password="secret")
        client.send_message(
            source_addr_ton=5,
            source_addr="SENDER",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="79991234567",
            short_message=b"hello",
            registered_delivery=1,
        )
        while not (sent and reports):
            client.read_once()
        unbind_resp = client.unbind()
    finally:
        client.disconnect()
    return sent, reports, unbind_resp


async def test_smpplib_binds_submits_and_receives_the_report(make_sim: MakeSim) -> None:
    sim = await make_sim(dlr_delay_seconds=0.2)
    sent, reports, unbind_resp = await asyncio.to_thread(_submit_and_wait_for_report, sim.port)
    assert [pdu.message_id for pdu in sent] == [b"100000001"]
    (report,) = reports
    assert report.esm_class == 0x04  # SMSC delivery receipt
    assert report.source_addr == b"79991234567"
    assert report.destination_addr == b"SENDER"
    assert report.short_message.startswith(b"id:100000001 sub:001 dlvrd:001 submit date:")
    assert report.short_message.endswith(b" stat:DELIVRD err:000")
    assert report.receipted_message_id == b"100000001"
    assert report.message_state == smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED
    assert report.network_error_code == b"\x03\x00\x00"
    assert unbind_resp.command == "unbind_resp"
    assert sim.stats.dlrs_acked == 1


def _bind_with(port: int, password: str) -> None:
    client = _client(port)
    client.connect()
    try:
        client.bind_transmitter(system_id="gateway", password=password)
    finally:
        client.disconnect()


async def test_smpplib_sees_a_refused_bind(make_sim: MakeSim) -> None:
    sim = await make_sim()
    with pytest.raises(smpplib.exceptions.PDUError) as refused:
        await asyncio.to_thread(_bind_with, sim.port, "wrong")
    assert refused.value.args[1] == smpplib.consts.SMPP_ESME_RINVPASWD
