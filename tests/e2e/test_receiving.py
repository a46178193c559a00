"""Receiving end to end on the real broker: DELIVER_SMs from the simulator, through the
sender's transceiver bind, to events on Kafka.

The simulator plays the provider: it sends delivery reports (forced per message with
``queue_deliver`` of a report built as the provider builds it), HLR results for ``__HLR__``
submits, and incoming SMS in every coding, each until the gateway answers ESME_ROK. Every
event read back is validated against its JSON Schema.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.provider.codes import DELIVERY_ERRORS
from gateway.roles.sender import run_sender
from gateway.settings import TopicSettings
from gateway.simulator import DlrOutcome, SimulatorSettings, SmppSimulator, build_delivery_report
from gateway.simulator.dlr import AcceptedMessage
from gateway.simulator.hlr import hlr_result
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, tlv_cstr
from gateway.smpp.textcoding import encode_gsm7
from tests.e2e.support import read_events, results_by_request, sender_settings

pytestmark = pytest.mark.kafka

PASSWORD = "rx-pw"
SHOP = "Shop"
# Each receipt stat, its normalized status and finality (smsc.dlr/1), and the message_state
# TLV the provider sends with it (SMPP 3.4 5.2.28). The seed names DELIVRD, EXPIRED and
# UNDELIV; the rest are the other final and intermediate SMPP states.
STATS = {
    "DELIVRD": ("delivered", True, 2),
    "EXPIRED": ("expired", True, 3),
    "DELETED": ("deleted", True, 4),
    "UNDELIV": ("undeliverable", True, 5),
    "ACCEPTD": ("accepted", False, 6),
    "UNKNOWN": ("unknown", False, 7),
    "REJECTD": ("rejected", True, 8),
    "ENROUTE": ("enroute", False, 1),
}
SEED_RECEIPT = (
    "id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)
SEED_HLR = (
    "id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02 "
    "cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:"
)


@asynccontextmanager
async def receiving_sender(
    kafka: LocalKafka, topics: TopicSettings, *, system_type: str = "", **config: Any
) -> AsyncIterator[SmppSimulator]:
    """The simulator, and the sender role bound to it as a transceiver (with
    ``system_type``) until the block ends; ``config`` overrides simulator settings."""
    sim_config = SimulatorSettings(
        accounts={"gateway": PASSWORD},
        rate_limit_per_second=None,
        dlr_delay_seconds=0.05,
        dlr_retry_seconds=0.2,
        incoming_retry_seconds=0.2,
        **config,
    )
    async with SmppSimulator(sim_config) as sim:
        run = uuid.uuid4().hex[:6]
        settings = sender_settings(kafka, topics, sim.port, f"receiving-{run}", PASSWORD)
        smpp = dataclasses.replace(settings.smpp, system_type=system_type)
        settings = dataclasses.replace(settings, smpp=smpp)
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        try:
            yield sim
        finally:
            stop.set()
            await asyncio.wait_for(sender, 60)


def by_message_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["message_id"]: event for event in events}


def report(message_id: str, phone: str, stat: str, err: int) -> DeliverSm:
    """A report as the provider sends it for a message the gateway submitted earlier."""
    submitted = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    message = AcceptedMessage(message_id, 5, 0, SHOP, 1, 1, phone, submitted)
    done = datetime(2026, 11, 20, 10, 31, tzinfo=UTC)
    return build_delivery_report(
        message, DlrOutcome(stat, err), done, cost=Decimal("2.5"), mccmnc="25001"
    )


async def deliver_and_read(
    kafka: LocalKafka, topics: TopicSettings, pdus: list[DeliverSm], topic: str, want: int
) -> list[dict[str, Any]]:
    async with receiving_sender(kafka, topics) as sim:
        sim.queue_deliver("gateway", pdus)
        await asyncio.wait_for(sim.incoming_settled(), 60)
        assert (sim.stats.incoming_acked, sim.stats.incoming_rejected) == (len(pdus), 0)
    return await read_events(kafka, topic, lambda events: len(events) >= want)


# -- delivery reports ------------------------------------------------------------------------


async def test_every_stat_arrives_with_its_status(kafka: LocalKafka, topics: TopicSettings) -> None:
    ids = {stat: str(300_000_000 + n) for n, stat in enumerate(STATS)}
    pdus = [report(ids[stat], f"7900100000{n}", stat, 0) for n, stat in enumerate(STATS)]
    found = by_message_id(await deliver_and_read(kafka, topics, pdus, topics.dlr, len(STATS)))
    assert found.keys() == set(ids.values())
    for stat, (status, final, state) in STATS.items():
        event = found[ids[stat]]
        assert (event["stat"], event["status"], event["final"]) == (stat, status, final)
        assert (event["message_state"], event["source"]) == (state, "smpp")
        assert (event["err"], event["err_name"]) == (0, "No error")
        assert event["phone"].startswith("790010000")
        assert (event["cost"], event["parts"], event["mccmnc"]) == ("2.5000", 1, "25001")
        assert event["flags"]["message_type"] == "sms"


async def test_every_documented_err_code_arrives_with_its_name(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    codes = [*DELIVERY_ERRORS, 99]  # 99 is not in the provider's table
    ids = {code: str(400_000_000 + code) for code in codes}
    pdus = [
        report(ids[code], "79002000000", "DELIVRD" if code == 0 else "UNDELIV", code)
        for code in codes
    ]
    found = by_message_id(await deliver_and_read(kafka, topics, pdus, topics.dlr, len(codes)))
    assert found.keys() == set(ids.values())
    for code in codes:
        event = found[ids[code]]
        assert event["err"] == code
        assert event["err_name"] == DELIVERY_ERRORS.get(code)
        assert event["status"] == ("delivered" if code == 0 else "undeliverable")
        # network_error_code: network type 3 (GSM), then the code in two octets.
        assert event["network_error_code"] == f"03{code:04x}"
    assert found[ids[1]]["err_name"] == "The subscriber does not exist"
    assert found[ids[255]]["err_name"] == "Rejected by operator"
    assert found[ids[99]]["err_name"] is None


async def test_the_seed_examples_parse_field_by_field(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    pdus = [
        DeliverSm(
            source_addr="79003000000",
            esm_class=EsmClass.DELIVERY_RECEIPT,
            short_message=text.encode(),
        )
        for text in (SEED_RECEIPT, SEED_HLR)
    ]
    found = by_message_id(await deliver_and_read(kafka, topics, pdus, topics.dlr, 2))
    receipt, hlr = found["854019"], found["855469"]
    assert (receipt["sub"], receipt["dlvrd"]) == (1, 1)
    assert (receipt["submit_date"], receipt["done_date"]) == ("1108202241", "1108202241")
    assert (receipt["stat"], receipt["status"], receipt["final"]) == ("DELIVRD", "delivered", True)
    assert (receipt["err"], receipt["err_name"]) == (0, "No error")
    assert receipt["hlr"] is None
    assert receipt["raw"]["text"] == SEED_RECEIPT
    assert (hlr["stat"], hlr["err"], hlr["status"]) == ("DELIVRD", 0, "delivered")
    assert hlr["hlr"] == {
        "imsi": "250023012345678",
        "msc": "79232510066",
        "mcc": "250",
        "mnc": "02",
        "cn": "Russian Federation",
        "net": "MegaFON open Joint Stock Company",
        "rcn": "",
        "rnet": "",
    }
    assert hlr["raw"]["text"] == SEED_HLR


# -- HLR through the sender ------------------------------------------------------------------


async def test_an_hlr_request_brings_back_every_hlr_field(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    phones = ["+79161234567", "+77011234567"]
    request_id = f"hlr-{uuid.uuid4().hex[:6]}"
    request = {
        "schema": "smsc.send-request/1",
        "request_id": request_id,
        "recipients": phones,
        "text": "are they reachable?",  # required, but an HLR request sends only __HLR__
        "channel": "hlr",
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(topics.send, orjson.dumps(request), key=b"hlr")
    await producer.stop()
    async with receiving_sender(kafka, topics) as sim:
        result = (await results_by_request(kafka, topics.send_results, 1))[request_id]
        assert result["outcome"] == "accepted", result
        reports = await read_events(kafka, topics.dlr, lambda events: len(events) >= 2)
        assert sim.stats.hlr_results == 2
        assert {record.short_message for record in sim.submits} == {encode_gsm7("__HLR__")}
    found = by_message_id(reports)
    for recipient in result["recipients"]:
        (message_id,) = recipient["message_ids"]
        event = found[message_id]
        expected = hlr_result(message_id, recipient["phone"], DlrOutcome())
        assert event["hlr"] == {
            key: getattr(expected, key)
            for key in ("imsi", "msc", "mcc", "mnc", "cn", "net", "rcn", "rnet")
        }
        assert event["hlr"]["imsi"].startswith(event["hlr"]["mcc"] + event["hlr"]["mnc"])
        assert event["flags"]["message_type"] == "hlr"
        assert event["mccmnc"] == expected.mcc + expected.mnc
    assert {event["hlr"]["cn"] for event in reports} == {"Russian Federation", "Kazakhstan"}


# -- incoming SMS ------------------------------------------------------------------------------


INCOMING = {
    # coding: (text, data_coding the provider sends it in)
    "gsm": ("Price {10€} [ok] ~ back\\slash | caret^", 0),
    "latin1": ("Café crème à l'été, ¡Olé! Grüße", 4),
    "ucs2": ("Привет, мир! Ёжик съел 5 яблок", 8),
    "auto": ("Здравствуйте", 8),
}


async def test_incoming_sms_in_each_coding_keep_their_text(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    senders = {coding: f"7916000000{n}" for n, coding in enumerate([*INCOMING, "binary"])}
    octets = bytes([0x00, 0x7F, 0x80, 0xFF]) * 10
    long_text = "Длинное сообщение одним PDU. " * 12
    async with receiving_sender(kafka, topics) as sim:
        for coding, (text, _) in INCOMING.items():
            sim.send_incoming("gateway", senders[coding], "79001234567", text, coding=coding)
        sim.send_incoming("gateway", senders["binary"], "79001234567", octets, coding="binary")
        sim.send_incoming("gateway", "79169999999", "79001234567", long_text, concat="payload")
        await asyncio.wait_for(sim.incoming_settled(), 60)
        assert sim.stats.incoming_acked == 6
    events = await read_events(kafka, topics.incoming, lambda found: len(found) >= 6)
    by_phone = {event["phone"]: event for event in events}
    for coding, (text, data_coding) in INCOMING.items():
        event = by_phone[senders[coding]]
        assert (event["text"], event["data_coding"]) == (text, data_coding), coding
        assert (event["to"], event["source"]) == ("79001234567", "smpp")
    binary = by_phone[senders["binary"]]
    assert binary["data_coding"] == 4
    assert binary["raw"]["short_message_hex"] == octets.hex()
    assert by_phone["79169999999"]["text"] == long_text


async def test_concatenated_messages_sent_shuffled_arrive_whole(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    """8-bit and 16-bit UDH and SAR parts, out of order: one smsc.incoming/1 event each.

    Needs the reassembler (gateway/inbound/reassembly_service.py) wired into the sender.
    """
    texts = {
        "udh8": ("79170000001", "Part of a long GSM message {€}. " * 12, "gsm"),
        "udh16": ("79170000002", "Длинное сообщение в UCS2, часть за частью. " * 6, "ucs2"),
        "sar": ("79170000003", "Très long message en Latin-1, reçu à l'envers. " * 8, "latin1"),
    }
    parts = {}
    async with receiving_sender(kafka, topics) as sim:
        for concat, (phone, text, coding) in texts.items():
            sent = sim.send_incoming(
                "gateway", phone, "79001234567", text, coding=coding, concat=concat, shuffle=True
            )
            parts[concat] = len(sent)
        assert min(parts.values()) >= 3
        await asyncio.wait_for(sim.incoming_settled(), 60)
        events = await read_events(kafka, topics.incoming, lambda found: len(found) >= 3)
    by_phone = {event["phone"]: event for event in events}
    assert len(events) == 3, [event["text"][:20] for event in events]
    for concat, (phone, text, _) in texts.items():
        event = by_phone[phone]
        assert event["text"] == text, concat
        assert event["parts"] == parts[concat]
        assert not event.get("partial", False)


# -- SINGLE ------------------------------------------------------------------------------------


async def test_single_reports_each_part_under_the_id_its_submit_got(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    """system_type SINGLE: every part of a long message has its own id and its own report,
    and each report's id is one the send result listed."""
    request_id = f"single-{uuid.uuid4().hex[:6]}"
    request = {
        "schema": "smsc.send-request/1",
        "request_id": request_id,
        "recipients": ["+79180000001"],
        "text": "A long message reported part by part. " * 10,
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(topics.send, orjson.dumps(request), key=b"single")
    await producer.stop()
    async with receiving_sender(kafka, topics, system_type="SINGLE") as sim:
        result = (await results_by_request(kafka, topics.send_results, 1))[request_id]
        (recipient,) = result["recipients"]
        ids = recipient["message_ids"]
        reports = await read_events(kafka, topics.dlr, lambda events: len(events) >= len(ids))
        assert sim.stats.dlrs_scheduled == len(ids)
    assert len(ids) == len(set(ids)) >= 3
    assert sorted(event["message_id"] for event in reports) == sorted(ids)
    for event in reports:
        assert (event["sub"], event["dlvrd"], event["parts"]) == (1, 1, 1)
        assert event["status"] == "delivered"


async def test_report_ids_in_other_forms_match_the_submitted_id(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    """A report naming the message with leading zeros, or in hex, still carries the id the
    send result gave, so the two can be joined."""
    request_id = f"ids-{uuid.uuid4().hex[:6]}"
    request = {
        "schema": "smsc.send-request/1",
        "request_id": request_id,
        "recipients": ["+79180000002"],
        "text": "Which id?",
        "registered_delivery": False,
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(topics.send, orjson.dumps(request), key=b"ids")
    await producer.stop()
    async with receiving_sender(kafka, topics) as sim:
        result = (await results_by_request(kafka, topics.send_results, 1))[request_id]
        ((message_id,),) = (r["message_ids"] for r in result["recipients"])
        forms = [f"{int(message_id):020d}", hex(int(message_id)), f" {message_id} "]
        pdus = [
            dataclasses.replace(
                report(message_id, "79180000002", stat, 0),
                tlvs=(tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, form),),
            )
            for form, stat in zip(forms, ("ENROUTE", "ACCEPTD", "DELIVRD"), strict=True)
        ]
        sim.queue_deliver("gateway", pdus)
        await asyncio.wait_for(sim.incoming_settled(), 60)
    events = await read_events(kafka, topics.dlr, lambda found: len(found) >= len(forms))
    assert [event["message_id"] for event in events] == [message_id] * len(forms)
    assert {event["stat"] for event in events} == {"ENROUTE", "ACCEPTD", "DELIVRD"}


async def test_nothing_is_lost_when_the_bind_drops_mid_delivery(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    """DELIVER_SMs in flight when the connection drops come again on the sender's next bind;
    every message reaches Kafka, a repeat under the same event_id."""
    count = 300
    async with receiving_sender(kafka, topics) as sim:
        for n in range(count):
            sim.send_incoming("gateway", f"7919{n:07d}", "79001234567", f"Message {n}")
        await _eventually(lambda: sim.stats.incoming_acked >= count // 10)
        assert sim.faults.drop_connections("gateway") == 1
        await asyncio.wait_for(sim.incoming_settled(), 60)
        stats = sim.stats
        assert stats.incoming_acked == count
        assert stats.incoming_sent > count, "some were in flight when the bind dropped"
        assert stats.binds_ok == 2, "the sender bound again"
    events = await read_events(
        kafka, topics.incoming, lambda found: len({e["event_id"] for e in found}) >= count
    )
    texts = {event["event_id"]: event["text"] for event in events}
    assert sorted(texts.values()) == sorted(f"Message {n}" for n in range(count))


async def _eventually(check: Callable[[], bool], wait_seconds: float = 30) -> None:
    deadline = time.monotonic() + wait_seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
