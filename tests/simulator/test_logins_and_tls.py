"""Connections per login (a new bind kicks the old one, MCONn) and the TLS listener."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from gateway.errors import ConfigError
from gateway.simulator import SmppSimulator
from gateway.smpp import codec
from gateway.smpp.pdu import BindTransceiver, SubmitSmResp, Unbind

from .conftest import CertFiles, fast_config
from .helpers import ROK, Connect, MakeSim, bound_esme, eventually, read_pdu


async def test_a_new_bind_kicks_the_old_one_and_takes_its_reports(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(dlr_delay_seconds=0.3)
    first = await bound_esme(sim, connect)
    await first.submit(registered_delivery=1)
    second = await bound_esme(sim, connect)
    await asyncio.wait_for(first.conn.wait_closed(), 2)
    assert first.conn.close_reason == "peer unbound"  # a clean unbind from the simulator
    report = await second.next_deliver()
    assert report.short_message.startswith(b"id:100000001 ")
    assert first.received.empty()
    assert (sim.bound("gateway"), sim.stats.binds_kicked) == (1, 1)
    await eventually(lambda: sim.stats.dlrs_acked == 1)


async def test_a_report_in_flight_on_a_kicked_connection_goes_to_the_new_one(
    sim: SmppSimulator, connect: Connect
) -> None:
    silent = await bound_esme(sim, connect, answer=lambda pdu: None)
    await silent.submit(registered_delivery=1)
    await silent.next_deliver()  # received, never answered
    again = await bound_esme(sim, connect)
    report = await again.next_deliver()
    assert report.short_message.startswith(b"id:100000001 ")
    await eventually(lambda: sim.stats.dlrs_acked == 1)
    assert silent.conn.closed


async def test_a_kicked_connection_that_ignores_the_unbind_is_closed(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(response_timeout_seconds=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        bind = BindTransceiver(sequence_number=1, system_id="gateway", password="secret")
        writer.write(codec.encode(bind))
        assert (await read_pdu(reader)).command_status == ROK
        await bound_esme(sim, connect)
        assert isinstance(await read_pdu(reader), Unbind)  # left unanswered
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()
    assert sim.bound("gateway") == 1


async def test_mcon_allows_that_many_binds_and_the_next_kicks_the_oldest(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(accounts={"gateway": "secret", "other": "pw"})
    oldest = await bound_esme(sim, connect, "MCON2")
    middle = await bound_esme(sim, connect, "ISO,MCON2")
    await bound_esme(sim, connect, system_id="other", password="pw")  # another login
    assert (sim.bound("gateway"), sim.stats.binds_kicked) == (2, 0)
    newest = await bound_esme(sim, connect, "MCON2")
    await asyncio.wait_for(oldest.conn.wait_closed(), 2)
    assert not middle.conn.closed
    assert not newest.conn.closed
    assert (sim.bound("gateway"), sim.bound("other"), sim.stats.binds_kicked) == (2, 1, 1)


# -- TLS -----------------------------------------------------------------------------------


def _client_context(cert: CertFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.cert))


async def test_tls_bind_submit_and_report(
    make_sim: MakeSim, connect: Connect, tls_cert: CertFiles
) -> None:
    sim = await make_sim(
        tls_port=0, tls_cert_file=str(tls_cert.cert), tls_key_file=str(tls_cert.key)
    )
    assert sim.tls_port not in (None, sim.port)
    esme = await connect(sim.tls_port, tls=_client_context(tls_cert))
    assert (await esme.bind()).command_status == ROK
    answer = await esme.submit(registered_delivery=1)
    assert isinstance(answer, SubmitSmResp)
    report = await esme.next_deliver()
    assert report.short_message.startswith(f"id:{answer.message_id} ".encode())
    plain = await bound_esme(sim, connect, "MCON2")  # the plain port still works
    assert (await plain.submit(short_message=b"plain")).command_status == ROK


async def test_tls_is_off_by_default(sim: SmppSimulator) -> None:
    assert sim.tls_port is None


async def test_an_unreadable_certificate_is_a_config_error(tls_cert: CertFiles) -> None:
    config = fast_config(tls_port=0, tls_cert_file=str(tls_cert.key), tls_key_file="/nonexistent")
    with pytest.raises(ConfigError, match="TLS certificate"):
        await SmppSimulator(config).start()
