"""DeliverSmPublisher over a pipelined publisher (the receiver's hot path), and its shutdown.

Records are handed over in arrival order without waiting for Kafka; each PDU is answered from
its own record's acknowledgement, so never before it and in the order Kafka acknowledges;
after ``close()`` new PDUs are refused with ESME_RX_T_APPN while the ones taken still get
their answer after their publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from gateway.errors import KafkaUnavailableError
from gateway.inbound.publisher import Acked, DeliverSmPublisher, PipelinedPublisher
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.smpp.constants import CommandStatus, EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, tlv_cstr
from tests.eventcheck import validate_event
from tests.sender.fakes import FakePublisher

TOPICS = TopicSettings()
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def receipt(message_id: int, stat: str = "DELIVRD", err: int = 0) -> DeliverSm:
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:3001011200 done date:3001011201 "
        f"stat:{stat} err:{err:03d}"
    )
    return DeliverSm(
        sequence_number=message_id,
        esm_class=EsmClass.DELIVERY_RECEIPT,
        source_addr="79991234567",
        short_message=text.encode(),
        tlvs=(tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, str(message_id)),),
    )


@dataclass
class Handed:
    topic: str
    key: bytes | None
    value: bytes
    acked: Acked


class PipelineFake:
    """Keeps every record handed over with its callback; the test acknowledges them."""

    def __init__(self) -> None:
        self.handed: list[Handed] = []
        self.explode_on: int | None = None  # raise on the n-th record (0-based)

    async def enqueue(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        if self.explode_on == len(self.handed):
            self.explode_on = None
            raise RuntimeError("producer bug")
        self.handed.append(Handed(topic, key, value, acked))


def wired(sink: PipelinedPublisher) -> tuple[DeliverSmPublisher, Metrics]:
    metrics = Metrics()
    handler = DeliverSmPublisher(sink, TOPICS, metrics, role="receiver", clock=lambda: NOW)
    return handler, metrics


def into(answers: dict[int, list[int]], n: int) -> Callable[[int], None]:
    return lambda status: answers.setdefault(n, []).append(status)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_records_handed_over_in_order_and_answered_on_their_own_ack() -> None:
    sink = PipelineFake()
    handler, _ = wired(sink)
    answers: dict[int, list[int]] = {}
    for n in range(1, 6):
        handler.submit(receipt(n), into(answers, n), bind="rx")
    await settle()
    assert [orjson.loads(h.value)["message_id"] for h in sink.handed] == ["1", "2", "3", "4", "5"]
    assert all(h.key == str(n).encode() for n, h in enumerate(sink.handed, 1))
    assert answers == {}  # nothing answered before Kafka acknowledged
    for handed in sink.handed:
        validate_event(orjson.loads(handed.value))
    sink.handed[3].acked(None)
    sink.handed[0].acked(KafkaUnavailableError("not acknowledged"))
    assert answers == {4: [CommandStatus.ESME_ROK], 1: [CommandStatus.ESME_RX_T_APPN]}
    assert handler.unanswered == 3
    for handed in sink.handed[1:3] + sink.handed[4:]:
        handed.acked(None)
    async with asyncio.timeout(1):
        await handler.drain()
    assert set(answers) == {1, 2, 3, 4, 5}
    assert all(len(statuses) == 1 for statuses in answers.values())


async def test_a_failure_handing_over_answers_that_pdu_and_keeps_pumping() -> None:
    sink = PipelineFake()
    sink.explode_on = 1
    handler, metrics = wired(sink)
    answers: dict[int, list[int]] = {}
    for n in (1, 2, 3):
        handler.submit(receipt(n), into(answers, n), bind="rx")
    await settle()
    assert answers == {2: [CommandStatus.ESME_RX_T_APPN]}
    assert [orjson.loads(h.value)["message_id"] for h in sink.handed] == ["1", "3"]
    for handed in sink.handed:
        handed.acked(None)
    assert answers[1] == answers[3] == [CommandStatus.ESME_ROK]
    labels = {"bind": "rx", "kind": "error", "command_status": "ESME_RX_T_APPN"}
    assert metrics.registry.get_sample_value("smsc_smpp_deliver_sm_total", labels) == 1


async def test_reports_counted_by_stat_and_err_with_bounded_labels() -> None:
    sink = PipelineFake()
    handler, metrics = wired(sink)
    pdus = [
        receipt(1),
        receipt(2, "UNDELIV", 1),
        receipt(3, "UNDELIV", 1),
        receipt(4, "ODDSTAT", 77),
    ]
    for pdu in pdus:
        handler.submit(pdu, lambda _: None, bind="rx")
    await settle()
    for handed in sink.handed:
        handed.acked(None)
    sample = metrics.registry.get_sample_value
    reports = "smsc_smpp_delivery_reports_total"
    assert sample(reports, {"kind": "dlr", "stat": "DELIVRD"}) == 1
    assert sample(reports, {"kind": "dlr", "stat": "UNDELIV"}) == 2
    assert sample(reports, {"kind": "dlr", "stat": "other"}) == 1
    errors = "smsc_smpp_delivery_errors_total"
    assert sample(errors, {"err": "1", "err_name": "The subscriber does not exist"}) == 2
    assert sample(errors, {"err": "other", "err_name": "other"}) == 1
    assert sample(errors, {"err": "0", "err_name": "No error"}) == 1


async def test_close_refuses_new_pdus_and_answers_taken_ones_after_their_publish() -> None:
    kafka = FakePublisher()
    kafka.gate = asyncio.Event()
    handler, metrics = wired(kafka)
    answers: dict[int, list[int]] = {}
    handler.submit(receipt(1), into(answers, 1), bind="rx")
    await settle()
    handler.close()
    handler.submit(receipt(2), into(answers, 2), bind="rx")
    assert answers == {2: [CommandStatus.ESME_RX_T_APPN]}  # at once, before the publish
    drained = asyncio.create_task(handler.drain())
    await settle()
    assert not drained.done()
    kafka.gate.set()
    async with asyncio.timeout(1):
        await drained
    assert answers[1] == [CommandStatus.ESME_ROK]
    assert [orjson.loads(p.value)["message_id"] for p in kafka.published] == ["1"]
    labels = {"bind": "rx", "kind": "refused", "command_status": "ESME_RX_T_APPN"}
    assert metrics.registry.get_sample_value("smsc_smpp_deliver_sm_total", labels) == 1
