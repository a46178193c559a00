"""Incoming SMS, HLR results and SINGLE reports over TCP, read with the gateway's own code.

The incoming outbox must keep each DELIVER_SM until it is answered ESME_ROK: after a
temporary error, no answer, or a dropped connection it comes again (to any receiving bind of
the account); a permanent error drops it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from gateway.events.delivery import DeliveryReport, IncomingMessage
from gateway.inbound.deliver_sm import interpret
from gateway.inbound.parts import IncomingPart
from gateway.simulator import DlrOutcome, SmppSimulator
from gateway.simulator.hlr import HlrResult, hlr_result
from gateway.smpp.constants import CommandStatus, DataCoding, EsmClass, TlvTag
from gateway.smpp.pdu import BindReceiver, DeliverSm, SubmitSmResp
from gateway.smpp.receipt import parse_receipt
from gateway.smpp.textcoding import encode_gsm7

from .esme import Esme
from .helpers import ROK, Connect, MakeSim, bound_esme, eventually

SUBSCRIBER, NUMBER = "79161234567", "79001234567"
T_APPN, P_APPN = CommandStatus.ESME_RX_T_APPN, CommandStatus.ESME_RX_P_APPN


def answers(*statuses: int | None) -> Iterator[int | None]:
    """The given answers, then ESME_ROK for ever."""
    yield from statuses
    while True:
        yield ROK


def unnumbered(pdus: Iterable[DeliverSm]) -> list[DeliverSm]:
    """The PDUs without their sequence numbers, which each connection assigns."""
    return [dataclasses.replace(pdu, sequence_number=0) for pdu in pdus]


def read(pdu: DeliverSm) -> DeliveryReport | IncomingMessage:
    event = interpret(pdu, datetime.now(UTC))
    assert isinstance(event, DeliveryReport | IncomingMessage), event
    return event


def text_of(pdu: DeliverSm) -> str:
    """The text of an incoming SMS as the gateway reads it."""
    message = read(pdu)
    assert isinstance(message, IncomingMessage)
    return message.text


def report_of(pdu: DeliverSm) -> DeliveryReport:
    report = read(pdu)
    assert isinstance(report, DeliveryReport)
    return report


async def test_incoming_sms_reaches_a_receiver_bind_and_settles(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await connect(sim.port)
    assert (await esme.bind(cls=BindReceiver)).command_status == ROK
    sent = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "Привет, мир")
    await asyncio.wait_for(sim.incoming_settled(), 3)
    received = await esme.next_deliver()
    assert unnumbered([received]) == sent
    message = read(received)
    assert isinstance(message, IncomingMessage)
    assert (message.phone, message.to, message.text) == (SUBSCRIBER, NUMBER, "Привет, мир")
    stats = sim.stats
    assert (stats.incoming_queued, stats.incoming_sent, stats.incoming_acked) == (1, 1, 1)
    assert stats.incoming_pending == 0


async def test_an_iso_receiver_gets_latin1_where_others_get_gsm(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect, "ISO")
    (iso,) = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "Café")
    await esme.close()
    esme = await bound_esme(sim, connect)
    (plain,) = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "Café")
    assert (iso.data_coding, iso.short_message) == (DataCoding.LATIN1, b"Caf\xe9")
    assert (plain.data_coding, plain.short_message) == (DataCoding.GSM7, b"Caf\x05")
    await asyncio.wait_for(sim.incoming_settled(), 3)
    texts = [text_of(await esme.next_deliver()) for _ in range(2)]
    assert texts == ["Café", "Café"]


async def test_queued_before_any_bind_it_waits_for_one(
    sim: SmppSimulator, connect: Connect
) -> None:
    sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "early")
    await asyncio.sleep(0.1)
    assert sim.stats.incoming_pending == 1
    esme = await bound_esme(sim, connect)
    await asyncio.wait_for(sim.incoming_settled(), 3)
    assert text_of(await esme.next_deliver()) == "early"


async def test_redelivered_after_a_temporary_error(sim: SmppSimulator, connect: Connect) -> None:
    statuses = answers(T_APPN, T_APPN)
    esme = await bound_esme(sim, connect, answer=lambda pdu: next(statuses))
    sent = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "again")
    await asyncio.wait_for(sim.incoming_settled(), 3)
    attempts = [await esme.next_deliver() for _ in range(3)]
    assert unnumbered(attempts) == sent * 3
    stats = sim.stats
    assert (stats.incoming_sent, stats.incoming_refused, stats.incoming_acked) == (3, 2, 1)


async def test_dropped_after_a_permanent_error(sim: SmppSimulator, connect: Connect) -> None:
    esme = await bound_esme(sim, connect, answer=lambda pdu: P_APPN)
    sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "unreadable to the gateway")
    await asyncio.wait_for(sim.incoming_settled(), 3)
    await esme.next_deliver()
    await asyncio.sleep(0.2)
    assert esme.received.empty()
    assert (sim.stats.incoming_rejected, sim.stats.incoming_acked) == (1, 0)


async def test_redelivered_after_no_answer(make_sim: MakeSim, connect: Connect) -> None:
    sim = await make_sim(response_timeout_seconds=0.2, incoming_retry_seconds=0.05)
    statuses = answers(None)
    esme = await bound_esme(sim, connect, answer=lambda pdu: next(statuses))
    sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "late")
    await asyncio.wait_for(sim.incoming_settled(), 3)
    first, second = await esme.next_deliver(), await esme.next_deliver()
    assert first.short_message == second.short_message == b"late"
    assert (sim.stats.incoming_timed_out, sim.stats.incoming_acked) == (1, 1)


async def test_redelivered_to_the_next_receiver_after_a_dropped_connection(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(incoming_retry_seconds=60.0)
    silent = await bound_esme(sim, connect, answer=lambda pdu: None)
    sent = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, long_text := "Длинное " * 30)
    assert len(sent) > 1
    await eventually(lambda: silent.received.qsize() == len(sent))
    await silent.close()  # every part in flight, none answered
    receiver = await connect(sim.port)
    assert (await receiver.bind(cls=BindReceiver)).command_status == ROK
    await asyncio.wait_for(sim.incoming_settled(), 3)
    again = [await receiver.next_deliver() for _ in sent]
    assert sorted(unnumbered(again), key=sent.index) == sent
    whole = b"".join(pdu.short_message[6:] for pdu in sent)
    assert whole.decode("utf-16-be") == long_text
    assert (sim.stats.incoming_acked, sim.stats.incoming_sent) == (len(sent), 2 * len(sent))


async def test_shuffled_parts_go_out_of_order_in_the_returned_order(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    sent = sim.send_incoming("gateway", SUBSCRIBER, NUMBER, "x" * 500, concat="udh16", shuffle=True)
    sequences = [pdu.short_message[6] for pdu in sent]
    assert sorted(sequences) == list(range(1, len(sent) + 1))
    assert sequences != sorted(sequences)
    received = [await esme.next_deliver() for _ in sent]
    assert unnumbered(received) == sent


async def test_queue_deliver_sends_any_pdu_until_acknowledged(
    sim: SmppSimulator, connect: Connect
) -> None:
    statuses = answers(T_APPN)
    esme = await bound_esme(sim, connect, answer=lambda pdu: next(statuses))
    odd = DeliverSm(source_addr="1", destination_addr="2", short_message=b"\x00\x01")
    sim.queue_deliver("gateway", [odd])
    await asyncio.wait_for(sim.incoming_settled(), 3)
    assert unnumbered([await esme.next_deliver(), await esme.next_deliver()]) == [odd, odd]


# -- HLR ---------------------------------------------------------------------------------


def test_the_seed_example_hlr_result_is_written_exactly() -> None:
    result = HlrResult(
        "855469",
        "DELIVRD",
        0,
        imsi="250023012345678",
        msc="79232510066",
        mcc="250",
        mnc="02",
        cn="Russian Federation",
        net="MegaFON open Joint Stock Company",
    )
    assert result.text() == (
        "id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02 "
        "cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:"
    )


def test_hlr_results_are_plausible_and_fixed_per_phone() -> None:
    result = hlr_result("1", "+79161234567", DlrOutcome())
    assert result == hlr_result("1", "79161234567", DlrOutcome())
    assert (result.mcc, result.cn) == ("250", "Russian Federation")
    assert result.imsi.startswith(result.mcc + result.mnc)
    assert (len(result.imsi), len(result.msc), result.msc[0]) == (15, 11, "7")
    assert hlr_result("1", "77011234567", DlrOutcome()).cn == "Kazakhstan"
    absent = hlr_result("1", "79161234567", DlrOutcome("UNDELIV", 1))
    assert (absent.imsi, absent.msc, absent.mcc) == ("", "", "250")
    unknown = hlr_result("1", "12125550100", DlrOutcome())
    assert (unknown.imsi, unknown.cn) == ("", "")


async def test_an_hlr_request_is_answered_with_an_hlr_result(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    response = await esme.submit(
        short_message=encode_gsm7("__HLR__"), destination_addr=SUBSCRIBER, registered_delivery=1
    )
    assert isinstance(response, SubmitSmResp)
    pdu = await esme.next_deliver()
    report = read(pdu)
    assert isinstance(report, DeliveryReport)
    expected = hlr_result(response.message_id, SUBSCRIBER, DlrOutcome())
    assert pdu.short_message.decode() == expected.text()
    assert report.message_id == response.message_id
    assert (report.stat, report.err) == ("DELIVRD", 0)
    assert report.hlr == {
        "imsi": expected.imsi,
        "msc": expected.msc,
        "mcc": expected.mcc,
        "mnc": expected.mnc,
        "cn": expected.cn,
        "net": expected.net,
        "rcn": "",
        "rnet": "",
    }
    assert report.flags is not None
    assert report.flags["message_type"] == "hlr"
    assert report.mccmnc == expected.mcc + expected.mnc
    assert sim.stats.hlr_results == 1


async def test_hlr_text_is_read_as_latin1_on_an_iso_bind(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect, "ISO")
    await esme.submit(short_message=b"__HLR__", destination_addr=SUBSCRIBER, registered_delivery=1)
    receipt = parse_receipt((await esme.next_deliver()).short_message.decode())
    assert receipt.is_hlr


async def test_an_ordinary_text_gets_an_ordinary_receipt(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    await esme.submit(short_message=b"__HLR__ please", registered_delivery=1)
    receipt = parse_receipt((await esme.next_deliver()).short_message.decode())
    assert (receipt.is_hlr, receipt.sub) == (False, 1)
    assert sim.stats.hlr_results == 0


# -- SINGLE --------------------------------------------------------------------------------


async def submit_parts(esme: Esme, total: int, reference: int) -> list[str]:
    ids = []
    for sequence in range(1, total + 1):
        header = bytes((5, 0, 3, reference, total, sequence))
        response = await esme.submit(
            esm_class=EsmClass.UDHI,
            short_message=header + f"part {sequence}".encode(),
            data_coding=DataCoding.GSM7,
            registered_delivery=1,
        )
        assert isinstance(response, SubmitSmResp)
        ids.append(response.message_id)
    return ids


async def test_single_gives_each_part_its_own_id_and_report(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect, "ISO,SINGLE")
    ids = await submit_parts(esme, 3, reference=7)
    assert len(set(ids)) == 3
    reports = [report_of(await esme.next_deliver()) for _ in ids]
    assert sorted(r.message_id for r in reports) == sorted(ids)
    for report in reports:
        assert (report.sub, report.dlvrd, report.parts) == (1, 1, 1)
    await asyncio.sleep(0.2)
    assert esme.received.empty()


async def test_without_single_the_glued_message_has_one_id_and_one_report(
    sim: SmppSimulator, connect: Connect
) -> None:
    esme = await bound_esme(sim, connect)
    ids = await submit_parts(esme, 3, reference=8)
    assert len(set(ids)) == 1
    report = read(await esme.next_deliver())
    assert isinstance(report, DeliveryReport)
    assert (report.message_id, report.sub, report.parts) == (ids[0], 3, 3)
    await asyncio.sleep(0.2)
    assert esme.received.empty()


# -- made-up traffic -----------------------------------------------------------------------


async def test_configured_traffic_reaches_receiving_binds_readably(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(incoming_rate_per_second=100.0, incoming_long_share=0.5)
    await asyncio.sleep(0.1)
    assert sim.stats.incoming_queued == 0, "nothing is made up without a receiving bind"
    esme = await bound_esme(sim, connect)
    await eventually(lambda: sim.stats.incoming_acked >= 20)
    received = [esme.received.get_nowait() for _ in range(20)]
    assert all(pdu.destination_addr == sim.config.incoming_number for pdu in received)
    assert {pdu.data_coding for pdu in received} > {DataCoding.GSM7}
    assert any(pdu.esm_class & EsmClass.UDHI or pdu.tlv(TlvTag.SAR_MSG_REF_NUM) for pdu in received)
    readable = (IncomingMessage, IncomingPart)  # a part waits for reassembly in the gateway
    assert all(isinstance(interpret(pdu, datetime.now(UTC)), readable) for pdu in received)
