"""The part route of DeliverSmPublisher: a part is stored on the parts topic, then answered.

A recording publisher stands in for Kafka here (the broker tests are in
test_reassembly_service.py); what matters is what is published, where, and the order of the
publish and the answer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from gateway.errors import KafkaUnavailableError
from gateway.inbound.concat import Concat, Scheme
from gateway.inbound.parts import read_part
from gateway.inbound.publisher import DeliverSmPublisher
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.smpp.constants import CommandStatus, EsmClass
from gateway.smpp.pdu import DeliverSm
from tests.eventcheck import validate_event
from tests.inbound.concat_support import deliver_parts
from tests.sender.fakes import TaskPerRecord

TOPICS = TopicSettings()
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """Publishes nowhere; records each publish and answer in one list, in order."""

    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.log: list[tuple[str, object, object]] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        await asyncio.sleep(0)
        if self.failing:
            raise KafkaUnavailableError("not acknowledged")
        self.log.append((topic, key, value))

    def respond(self, status: int) -> None:
        self.log.append(("answer", status, None))


async def handle(pdu: DeliverSm, recorder: Recorder) -> Metrics:
    metrics = Metrics()
    handler = DeliverSmPublisher(
        TaskPerRecord(recorder), TOPICS, metrics, role="sender", clock=lambda: NOW
    )
    handler.submit(pdu, recorder.respond, bind="tx1")
    async with asyncio.timeout(5):
        await handler.drain()
    return metrics


async def test_a_part_is_stored_by_phone_on_the_parts_topic_then_answered() -> None:
    first = deliver_parts("long " * 60, reference=9)[0]
    recorder = Recorder()
    metrics = await handle(first, recorder)
    (topic, key, value), answer = recorder.log
    assert (topic, key) == (TOPICS.incoming_parts, b"79001234567")
    assert answer == ("answer", CommandStatus.ESME_ROK, None)
    assert isinstance(value, bytes)
    part = read_part(value)
    assert part.concat == Concat(Scheme.UDH8, 9, 2, 1)
    assert part.received_at == NOW
    assert part.body == b"long " * 30 + b"lon"  # 153 GSM septets, the header left out
    assert part.header + part.body == first.short_message
    labels = {"bind": "tx1", "kind": "incoming_part", "command_status": "ESME_ROK"}
    assert metrics.registry.get_sample_value("smsc_smpp_deliver_sm_total", labels) == 1


async def test_a_part_kafka_cannot_take_is_refused_for_redelivery() -> None:
    recorder = Recorder(failing=True)
    await handle(deliver_parts("long " * 60)[1], recorder)
    assert recorder.log == [("answer", CommandStatus.ESME_RX_T_APPN, None)]


async def test_a_malformed_header_is_dead_lettered_and_refused_for_good() -> None:
    bad = DeliverSm(
        source_addr="79001234567",
        esm_class=EsmClass.UDHI,
        short_message=b"\x05\x00\x03\x01\x02\x05text",
    )
    recorder = Recorder()
    await handle(bad, recorder)
    (topic, _, value), answer = recorder.log
    assert topic == TOPICS.dead_letter
    assert answer == ("answer", CommandStatus.ESME_RX_P_APPN, None)
    assert isinstance(value, bytes)
    event = orjson.loads(value)
    validate_event(event)
    assert event["reason"]["code"] == "invalid_concatenation"
    assert "outside 1..2" in event["reason"]["message"]
