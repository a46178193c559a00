"""The simulator over real TCP, with the project's own Session/SmppConnection as the ESME."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.simulator import (
    DlrOutcome,
    IncomingSpec,
    NoReceiverError,
    SmppSimulator,
    build_incoming,
)
from gateway.smpp import codec
from gateway.smpp.constants import CommandStatus, EsmClass, MessageState, TlvTag
from gateway.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from gateway.smpp.session import State
from gateway.smpp.textcoding import decode_text

from .conftest import fast_config
from .helpers import ROK, Connect, MakeSim, bound_esme, eventually, read_pdu


def tlv_values(pdu: Pdu) -> dict[int, bytes]:
    return {tlv.tag: tlv.value for tlv in pdu.tlvs}


# -- binds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "response", "state"),
    [
        (BindTransmitter, BindTransmitterResp, State.BOUND_TX),
        (BindReceiver, BindReceiverResp, State.BOUND_RX),
        (BindTransceiver, BindTransceiverResp, State.BOUND_TRX),
    ],
)
async def test_bind_with_right_credentials(
    sim: SmppSimulator, connect: Connect, bind: type[Pdu], response: type[Pdu], state: State
) -> None:
    esme = await connect(sim.port)
    answer = await esme.bind(cls=bind)
    assert isinstance(answer, response)
    assert answer.command_status == ROK
    assert answer.system_id == "SMSC"  # type: ignore[attr-defined]
    assert esme.conn.session.state is state
    assert sim.bound("gateway") == 1
    assert sim.stats.binds_ok == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("gateway", "wrong", CommandStatus.ESME_RINVPASWD),
        ("nobody", "secret", CommandStatus.ESME_RINVSYSID),
    ],
)
async def test_failed_bind_is_answered_then_closed(
    sim: SmppSimulator, connect: Connect, system_id: str, password: str, status: int
) -> None:
    esme = await connect(sim.port)
    answer = await esme.bind(system_id, password)
    assert isinstance(answer, BindTransceiverResp)
    assert answer.command_status == status
    await asyncio.wait_for(esme.conn.wait_closed(), 2)
    assert sim.stats.binds_failed == 1
    assert sim.bound() == 0


async def test_bind_checks_every_configured_account(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(accounts={"alpha": "pw1", "beta": "pw2"})
    esme = await connect(sim.port)
    assert (await esme.bind("beta", "pw2")).command_status == ROK
    other = await connect(sim.port)
    assert (await other.bind("beta", "pw1")).command_status == CommandStatus.ESME_RINVPASWD


# -- submit_sm -----------------------------------------------------------------------------


async def test_submit_answers_incrementing_decimal_ids(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    first = await esme.submit(short_message=b"one")
    second = await esme.submit(short_message=b"two", data_coding=8)
    assert isinstance(first, SubmitSmResp)
    assert isinstance(second, SubmitSmResp)
    assert first.message_id == "100000001"
    assert second.message_id == "100000002"
    assert [r.message_id for r in sim.submits] == ["100000001", "100000002"]
    assert sim.submits[1].short_message == b"two"
    assert sim.submits[1].data_coding == 8
    assert sim.submits[1].destination_addr == "79991234567"
    assert sim.stats.submits == 2
    assert sim.stats.submit_statuses[ROK] == 2


async def test_submit_without_destination_is_refused(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect)
    answer = await esme.submit(destination_addr="")
    assert answer.command_status == CommandStatus.ESME_RINVDSTADR
    assert sim.stats.submit_statuses[CommandStatus.ESME_RINVDSTADR] == 1
    assert list(sim.submits) == []


async def test_submit_on_a_receiver_bind_is_refused(sim: SmppSimulator) -> None:
    # Raw bytes: our own ESME session would refuse to send this.
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        bind = BindReceiver(sequence_number=1, system_id="gateway", password="secret")
        writer.write(codec.encode(bind))
        assert (await read_pdu(reader)).command_status == ROK
        writer.write(codec.encode(SubmitSm(sequence_number=2, destination_addr="7999")))
        answer = await read_pdu(reader)
        assert isinstance(answer, SubmitSmResp)
        assert answer.command_status == CommandStatus.ESME_RINVBNDSTS
    finally:
        writer.close()


async def test_submit_records_can_be_switched_off_and_cleared(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(record_submits=False)
    esme = await bound_esme(sim, connect)
    await esme.submit()
    assert list(sim.submits) == []
    small = await make_sim(max_recorded_submits=2)
    esme = await bound_esme(small, connect)
    for index in range(3):
        await esme.submit(short_message=b"message %d" % index)
    assert [r.message_id for r in small.submits] == ["100000002", "100000003"]
    small.clear_submits()
    assert list(small.submits) == []


async def test_long_message_parts_share_one_id_and_one_report(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    ids = []
    for part in (1, 2):
        udh = bytes([5, 0x00, 3, 0x42, 2, part])
        answer = await esme.submit(
            esm_class=EsmClass.UDHI, short_message=udh + b"x" * 10, registered_delivery=1
        )
        assert isinstance(answer, SubmitSmResp)
        ids.append(answer.message_id)
    assert ids[0] == ids[1]
    report = await esme.next_deliver()
    assert b" sub:002 dlvrd:002 " in report.short_message
    assert tlv_values(report)[TlvTag.SMSC_PARTS] == b"\x00\x02"
    await asyncio.sleep(0.2)
    assert esme.received.empty()


# -- delivery reports ----------------------------------------------------------------------

FIXED_NOW = datetime(2024, 3, 5, 14, 7, 31, tzinfo=UTC)


async def test_delivery_report_is_exactly_the_providers(connect: Connect) -> None:
    config = fast_config(dlr_delay_seconds=0.3)
    async with SmppSimulator(config, wall_clock=lambda: FIXED_NOW) as sim:
        esme = await bound_esme(sim, connect)
        answer = await esme.submit(
            source_addr_ton=5, source_addr_npi=0, source_addr="SENDER", registered_delivery=1
        )
        assert isinstance(answer, SubmitSmResp)
        sent_at = asyncio.get_running_loop().time()
        report = await esme.next_deliver()
        assert asyncio.get_running_loop().time() - sent_at >= 0.25
        await eventually(lambda: sim.stats.dlrs_acked == 1)
        assert sim.stats.dlrs_pending == 0
    assert report.esm_class == EsmClass.DELIVERY_RECEIPT
    assert (report.source_addr_ton, report.source_addr_npi, report.source_addr) == (
        1,
        1,
        "79991234567",
    )
    assert (report.dest_addr_ton, report.dest_addr_npi, report.destination_addr) == (
        5,
        0,
        "SENDER",
    )
    assert report.data_coding == 0
    assert report.short_message == (
        b"id:100000001 sub:001 dlvrd:001 submit date:2403051407 done date:2403051407 "
        b"stat:DELIVRD err:000"
    )
    assert tlv_values(report) == {
        TlvTag.RECEIPTED_MESSAGE_ID: b"100000001\x00",
        TlvTag.MESSAGE_STATE: bytes([MessageState.DELIVERED]),
        TlvTag.NETWORK_ERROR_CODE: b"\x03\x00\x00",
        TlvTag.SMSC_COST: b"1.9500\x00",
        TlvTag.SMSC_FLAGS: b"\x00\x00",
        TlvTag.SMSC_PARTS: b"\x00\x01",
        TlvTag.SMSC_MCCMNC: b"25001\x00",
    }


async def test_undelivered_outcome(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(
        dlr_outcomes=(DlrOutcome("UNDELIV", 1, 1.0),),
        dlr_cost=Decimal("0.5"),
        dlr_mccmnc="25002",
    )
    esme = await bound_esme(sim, connect)
    await esme.submit(registered_delivery=1)
    report = await esme.next_deliver()
    text = report.short_message.decode()
    assert " sub:001 dlvrd:000 " in text
    assert text.endswith(" stat:UNDELIV err:001")
    tlvs = tlv_values(report)
    assert tlvs[TlvTag.MESSAGE_STATE] == bytes([MessageState.UNDELIVERABLE])
    assert tlvs[TlvTag.NETWORK_ERROR_CODE] == b"\x03\x00\x01"
    assert tlvs[TlvTag.SMSC_COST] == b"0.5000\x00"
    assert tlvs[TlvTag.SMSC_MCCMNC] == b"25002\x00"


async def test_outcomes_follow_their_weights_reproducibly(
    make_sim: MakeSim, connect: Connect
) -> None:
    outcomes = (DlrOutcome("DELIVRD", 0, 3.0), DlrOutcome("EXPIRED", 245, 1.0))
    stats = []
    for _ in range(2):
        sim = await make_sim(dlr_outcomes=outcomes, seed=7)
        esme = await bound_esme(sim, connect)
        for index in range(40):
            await esme.submit(short_message=b"message %d" % index, registered_delivery=1)
        reports = [await esme.next_deliver() for _ in range(40)]
        stats.append(sorted(r.short_message.decode().split()[-2] for r in reports))
    assert stats[0] == stats[1]
    assert 20 <= stats[0].count("stat:DELIVRD") <= 38


@pytest.mark.parametrize("registered_delivery", [0, 2])
async def test_no_report_unless_asked(
    sim: SmppSimulator, connect: Connect, registered_delivery: int
) -> None:
    # 2 asks for a report on failure only, and the default outcome is DELIVRD.
    esme = await bound_esme(sim, connect)
    await esme.submit(registered_delivery=registered_delivery)
    await asyncio.sleep(0.3)
    assert esme.received.empty()
    assert sim.stats.dlrs_scheduled == 0


async def test_report_is_redelivered_after_an_error_response(
    sim: SmppSimulator, connect: Connect
) -> None:
    statuses = iter([CommandStatus.ESME_RX_T_APPN, ROK])
    esme = await bound_esme(sim, connect, answer=lambda pdu: next(statuses))
    await esme.submit(registered_delivery=1)
    first = await esme.next_deliver()
    second = await esme.next_deliver()
    assert first.short_message == second.short_message
    await eventually(lambda: sim.stats.dlrs_acked == 1)
    assert sim.stats.dlrs_refused == 1
    assert sim.stats.dlrs_pending == 0
    await asyncio.sleep(0.2)
    assert esme.received.empty()


async def test_report_is_redelivered_after_a_response_timeout(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(response_timeout_seconds=0.2)
    answers = iter([None, ROK])
    esme = await bound_esme(sim, connect, answer=lambda pdu: next(answers))
    await esme.submit(registered_delivery=1)
    first = await esme.next_deliver()
    second = await esme.next_deliver()
    assert first.short_message == second.short_message
    await eventually(lambda: sim.stats.dlrs_acked == 1)
    assert sim.stats.dlrs_timed_out == 1


async def test_report_waits_for_a_new_bind_when_the_connection_dropped(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(dlr_delay_seconds=0.2)
    esme = await bound_esme(sim, connect)
    await esme.submit(registered_delivery=1)
    await esme.close()
    await asyncio.sleep(0.4)  # due while nobody is bound
    assert sim.stats.dlrs_pending == 1
    again = await bound_esme(sim, connect)
    report = await again.next_deliver()
    assert report.short_message.startswith(b"id:100000001 ")
    await eventually(lambda: sim.stats.dlrs_pending == 0)


async def test_unanswered_report_goes_to_the_next_bind(
    sim: SmppSimulator, connect: Connect
) -> None:
    silent = await bound_esme(sim, connect, answer=lambda pdu: None)
    await silent.submit(registered_delivery=1)
    await silent.next_deliver()  # received, never answered
    await silent.close()
    again = await bound_esme(sim, connect)
    report = await again.next_deliver()
    assert report.short_message.startswith(b"id:100000001 ")
    await eventually(lambda: sim.stats.dlrs_acked == 1)


async def test_report_reaches_a_receiver_of_the_same_account(
    sim: SmppSimulator, connect: Connect
) -> None:
    # Two connections of one login need MCON2 (a second bind would kick the first).
    transmitter = await connect(sim.port)
    await transmitter.bind(cls=BindTransmitter, system_type="MCON2")
    receiver = await connect(sim.port)
    await receiver.bind(cls=BindReceiver, system_type="MCON2")
    await transmitter.submit(registered_delivery=1)
    report = await receiver.next_deliver()
    assert report.short_message.startswith(b"id:100000001 ")
    assert transmitter.received.empty()


async def test_many_reports_flow_through_the_window(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(window=5, dlr_delay_seconds=0.0)
    esme = await bound_esme(sim, connect)
    answers = await asyncio.gather(
        *(esme.submit(short_message=b"%d" % i, registered_delivery=1) for i in range(50))
    )
    assert all(a.command_status == ROK for a in answers)
    reports = [await esme.next_deliver() for _ in range(50)]
    assert len({r.short_message for r in reports}) == 50
    await eventually(lambda: sim.stats.dlrs_acked == 50)


# -- incoming messages, connection life ----------------------------------------------------


async def test_deliver_pushes_an_incoming_sms(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect)
    response = await sim.deliver(
        "gateway", build_incoming(IncomingSpec("79991234567", "SENDER", "Привет"))[0]
    )
    assert response.command_status == ROK
    message = await esme.next_deliver()
    assert message.esm_class == 0
    assert decode_text(message.short_message, message.data_coding) == "Привет"
    with pytest.raises(NoReceiverError):
        await sim.deliver("nobody", DeliverSm(destination_addr="1"))


async def test_inactivity_cuts_a_silent_connection_only(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(inactivity_timeout_seconds=0.5)
    silent = await bound_esme(sim, connect, "MCON2")
    alive = await bound_esme(sim, connect, "MCON2", enquire_link_interval_seconds=0.1)
    await asyncio.wait_for(silent.conn.wait_closed(), 2)
    await asyncio.sleep(0.6)
    assert not alive.conn.closed
    assert sim.bound() == 1


async def test_unbind_closes_cleanly(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect)
    await esme.conn.unbind(timeout_seconds=2)
    assert esme.conn.close_reason == "unbound"
    await eventually(lambda: sim.bound() == 0)


async def test_stop_unbinds_everyone_and_leaves_no_tasks(connect: Connect) -> None:
    before = asyncio.all_tasks()
    sim = SmppSimulator(fast_config())
    await sim.start()
    esmes = [await bound_esme(sim, connect, "MCON3") for _ in range(3)]
    await esmes[0].submit(registered_delivery=1)
    await sim.stop()
    for esme in esmes:
        await asyncio.wait_for(esme.task, 2)
        assert esme.conn.close_reason == "peer unbound"
    assert asyncio.all_tasks() == before
    with pytest.raises(OSError):  # noqa: PT011 - the connection is refused
        await asyncio.open_connection("127.0.0.1", sim.port)


async def test_serve_forever_returns_after_stop() -> None:
    sim = SmppSimulator(fast_config())
    serving = asyncio.create_task(sim.serve_forever())
    await eventually(lambda: sim.port != 0)
    await sim.stop()
    await asyncio.wait_for(serving, 2)


async def test_a_malformed_request_does_not_harm_others(
    sim: SmppSimulator, connect: Connect
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"\x00\x00\x00\x08garbage!")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) != b""  # a generic_nack, then close
    writer.close()
    esme = await bound_esme(sim, connect)
    assert (await esme.submit()).command_status == ROK
    assert sim.stats.connection_errors == 0
