"""DeliverSmPublisher: a DELIVER_SM is answered only after Kafka holds what it means.

ESME_ROK after the event was published; ESME_RX_T_APPN while Kafka is down (the provider
delivers again); dead letter then ESME_RX_P_APPN for what cannot be read.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from datetime import UTC, datetime

import pytest

from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.inbound.publisher import DeliverSmPublisher
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.smpp import codec
from gateway.smpp.constants import CommandStatus, EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, tlv_cstr
from tests.sender.fakes import FakePublisher, Timeline

TOPICS = TopicSettings()
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RECEIPT = DeliverSm(
    sequence_number=7,
    esm_class=EsmClass.DELIVERY_RECEIPT,
    source_addr="79991234567",
    short_message=b"id:854019 sub:001 dlvrd:001 submit date:1108202241 "
    b"done date:1108202241 stat:DELIVRD err:000",
    tlvs=(tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "854019"),),
)
INCOMING = DeliverSm(
    sequence_number=8,
    source_addr="+79991234567",
    destination_addr="4567",
    data_coding=8,
    short_message="Привет".encode("utf-16-be"),
)
UNREADABLE = DeliverSm(
    sequence_number=9, esm_class=EsmClass.DELIVERY_RECEIPT, short_message=b"no receipt here"
)


class Responder:
    """The ``respond`` callback: records the status in the shared timeline."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.statuses: list[int] = []

    def __call__(self, status: int) -> None:
        self.statuses.append(status)
        self.timeline.add("respond", status)


def wired() -> tuple[DeliverSmPublisher, FakePublisher, Responder, Metrics]:
    timeline = Timeline()
    kafka = FakePublisher(timeline)
    metrics = Metrics()
    handler = DeliverSmPublisher(kafka, TOPICS, metrics, role="sender", clock=lambda: NOW)
    return handler, kafka, Responder(timeline), metrics


async def handle(pdu: DeliverSm) -> tuple[FakePublisher, Responder, Metrics]:
    handler, kafka, responder, metrics = wired()
    handler.submit(pdu, responder, bind="tx1")
    async with asyncio.timeout(5):
        await handler.drain()
    return kafka, responder, metrics


async def test_delivery_report_is_published_then_answered_ok() -> None:
    kafka, responder, metrics = await handle(RECEIPT)
    assert responder.statuses == [CommandStatus.ESME_ROK]
    (published,) = kafka.published
    assert published.topic == TOPICS.dlr
    assert published.key == b"854019"
    event = published.event
    assert event["schema"] == "smsc.dlr/1"
    assert event["message_id"] == "854019"
    assert event["status"] == "delivered"
    assert event["err_name"] == "No error"
    assert kafka.timeline.entries == [
        ("publish", TOPICS.dlr, b"854019"),
        ("respond", CommandStatus.ESME_ROK),
    ]
    count = metrics.registry.get_sample_value(
        "smsc_smpp_deliver_sm_total", {"bind": "tx1", "kind": "dlr", "command_status": "ESME_ROK"}
    )
    assert count == 1


async def test_incoming_sms_is_published_by_phone_then_answered_ok() -> None:
    kafka, _, _ = await handle(INCOMING)
    (published,) = kafka.published
    assert published.topic == TOPICS.incoming
    assert published.key == b"79991234567"
    assert published.event["text"] == "Привет"
    assert published.event["to"] == "4567"
    assert kafka.timeline.entries == [
        ("publish", TOPICS.incoming, b"79991234567"),
        ("respond", CommandStatus.ESME_ROK),
    ]


@pytest.mark.parametrize("pdu", [RECEIPT, INCOMING, UNREADABLE], ids=["dlr", "incoming", "bad"])
async def test_answer_waits_for_the_publish(pdu: DeliverSm) -> None:
    handler, kafka, responder, _ = wired()
    kafka.gate = asyncio.Event()
    handler.submit(pdu, responder, bind="tx1")
    for _ in range(20):
        await asyncio.sleep(0)
    assert responder.statuses == []  # Kafka has not acknowledged yet
    assert kafka.published == []
    kafka.gate.set()
    async with asyncio.timeout(5):
        await handler.drain()
    assert len(responder.statuses) == 1
    assert [e[0] for e in kafka.timeline.entries] == ["publish", "respond"]


@pytest.mark.parametrize(
    ("pdu", "kind"),
    [(RECEIPT, "dlr"), (INCOMING, "incoming"), (UNREADABLE, "unreadable")],
    ids=["dlr", "incoming", "bad"],
)
async def test_kafka_down_asks_the_provider_to_deliver_again(pdu: DeliverSm, kind: str) -> None:
    handler, kafka, responder, metrics = wired()
    kafka.failing = True
    handler.submit(pdu, responder, bind="tx1")
    async with asyncio.timeout(5):
        await handler.drain()
    assert responder.statuses == [CommandStatus.ESME_RX_T_APPN]
    assert kafka.published == []  # nothing claimed
    assert kafka.failures == 1
    assert kafka.timeline.entries[-1] == ("respond", CommandStatus.ESME_RX_T_APPN)
    labels = {"bind": "tx1", "kind": kind, "command_status": "ESME_RX_T_APPN"}
    assert metrics.registry.get_sample_value("smsc_smpp_deliver_sm_total", labels) == 1


async def test_unreadable_pdu_is_dead_lettered_then_refused_permanently() -> None:
    kafka, _, metrics = await handle(UNREADABLE)
    (published,) = kafka.published
    assert published.topic == TOPICS.dead_letter
    assert published.key is None
    event = published.event
    assert event["schema"] == "smsc.dead-letter/1"
    assert event["role"] == "sender"
    assert event["origin"] == {"kind": "smpp", "detail": "deliver_sm"}
    assert event["reason"]["code"] == "invalid_receipt"
    assert event["key_base64"] is None
    assert base64.b64decode(event["value_base64"]) == codec.encode(UNREADABLE)
    assert codec.decode(base64.b64decode(event["value_base64"])) == UNREADABLE
    assert kafka.timeline.entries == [
        ("publish", TOPICS.dead_letter, None),
        ("respond", CommandStatus.ESME_RX_P_APPN),
    ]
    sample = metrics.registry.get_sample_value
    assert sample("smsc_dead_letters_total", {"reason": "invalid_receipt"}) == 1


async def test_many_pdus_each_answered_once() -> None:
    handler, kafka, _, _ = wired()
    answers: dict[int, list[int]] = {}
    pdus = [RECEIPT, INCOMING, UNREADABLE] * 5

    def answer(n: int, status: int) -> None:
        answers.setdefault(n, []).append(status)

    for n, pdu in enumerate(pdus):
        handler.submit(pdu, functools.partial(answer, n), bind="b")
    async with asyncio.timeout(5):
        await handler.drain()
    assert sorted(answers) == list(range(len(pdus)))
    assert all(len(statuses) == 1 for statuses in answers.values())
    assert len(kafka.published) == len(pdus)


async def test_redelivered_unreadable_pdu_keeps_its_dead_letter_id() -> None:
    again = DeliverSm(
        sequence_number=1234,
        esm_class=UNREADABLE.esm_class,
        short_message=UNREADABLE.short_message,
    )
    first, _, _ = await handle(UNREADABLE)
    second, _, _ = await handle(again)
    assert first.published[0].event["event_id"] == second.published[0].event["event_id"]


def test_smpp_dead_letter_id_depends_on_the_bytes() -> None:
    def make(value: bytes) -> str:
        event = dead_letter_event(
            role="sender",
            origin=Origin("smpp", detail="deliver_sm"),
            reason_code="invalid_receipt",
            reason="x",
            key=None,
            value=value,
            occurred_at=NOW,
        )
        return str(event["event_id"])

    assert make(b"a") == make(b"a")
    assert make(b"a") != make(b"b")
