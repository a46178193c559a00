"""Reassembly benchmark: parts of long incoming SMS on Kafka -> whole messages on Kafka.

``--messages`` long SMS of three parts each (GSM 7-bit, UCS2, Latin-1 in turn; 8-bit UDH,
16-bit UDH and SAR in turn) are stored on the parts topic as the binds store them, each
message's parts shuffled within a window of 30 parts, as parts of concurrent messages
interleave on the wire. Two figures from one run:

- core: parts per second through :class:`~gateway.inbound.reassembly.Reassembly` alone (read
  the record, add, build and serialize the event of each finished message), no I/O;
- service: parts per second through :class:`~gateway.inbound.reassembly_service.Reassembler`, from
  its start until every message was published (acks=all) to ``smsc.incoming.v1``, group join
  included.

Their ratio says how much of the service's time is the core's. Afterwards every event is
read back and its text checked.

Run: ``.venv/bin/python bench/reassembly.py [--messages N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.compose.encoding import DATA_CODING, Encoding, encode
from gateway.compose.split import frame, plan
from gateway.events.delivery import incoming_event
from gateway.events.envelope import dumps
from gateway.inbound.deliver_sm import interpret
from gateway.inbound.parts import IncomingPart, part_record, read_part
from gateway.inbound.reassembly import Reassembly, incoming_message
from gateway.inbound.reassembly_service import Reassembler
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import Settings, TopicSettings
from gateway.settings.composition import CompositionSettings
from gateway.smpp.pdu import DeliverSm

TEXTS = (
    (Encoding.GSM7, "Long GSM reply number {n}, long enough for three parts. " * 7),
    (Encoding.UCS2, "Ответ номер {n}: три части в UCS2. " * 5),
    (Encoding.LATIN1, "Réponse numéro {n}, trois parties en Latin-1, s'il vous plaît. " * 6),
)
SPLITS = (("udh", 8), ("udh", 16), ("sar", 8))
SHUFFLE_WINDOW = 30


def messages(count: int) -> tuple[list[IncomingPart], dict[str, str]]:
    """The parts of ``count`` messages, shuffled within windows, and each sender's text."""
    received = datetime.now(UTC)
    parts: list[IncomingPart] = []
    texts: dict[str, str] = {}
    for n in range(count):
        encoding, template = TEXTS[n % len(TEXTS)]
        split, bits = SPLITS[n % len(SPLITS)]
        text, phone = template.format(n=n), f"7900{n:07d}"
        settings = CompositionSettings(split=split, reference_bits=bits)
        for body in frame(plan(encode(text, encoding), settings), settings, n).parts:
            pdu = DeliverSm(
                source_addr=phone,
                destination_addr="4567",
                esm_class=int(body.esm_class),
                data_coding=int(DATA_CODING[encoding]),
                short_message=body.short_message,
                tlvs=body.tlvs,
            )
            part = interpret(pdu, received)
            assert isinstance(part, IncomingPart), part
            parts.append(part)
        texts[phone] = text
    assert len(parts) == 3 * count, "every message should have three parts"
    rng = random.Random(6)
    for start in range(0, len(parts), SHUFFLE_WINDOW):
        window = parts[start : start + SHUFFLE_WINDOW]
        rng.shuffle(window)
        parts[start : start + SHUFFLE_WINDOW] = window
    return parts, texts


def core_rate(records: list[bytes]) -> float:
    """Parts per second through the state machine and event serialization alone."""
    machine: Reassembly[int] = Reassembly(120.0)
    started = time.perf_counter()
    finished = 0
    for offset, value in enumerate(records):
        for message in machine.add(0, offset, read_part(value)).finished:
            dumps(incoming_event(incoming_message(message)))
            finished += 1
    elapsed = time.perf_counter() - started
    assert machine.pending() == 0, machine.pending()
    return len(records) / elapsed


async def store(bootstrap: str, topic: str, parts: list[IncomingPart]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, orjson.dumps(part_record(p)), key=p.phone.encode())
            for p in parts
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def service_rate(settings: Settings, parts: int, messages: int) -> float:
    """Parts per second through the Reassembler, until every message is acknowledged."""
    metrics = Metrics()
    publisher = KafkaPublisher(settings.kafka, metrics)
    await publisher.start()
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(Reassembler(settings, metrics, publisher).run(stop))
    done = {"outcome": "complete"}
    while (metrics.registry.get_sample_value("smsc_reassembly_messages_total", done) or 0) < (
        messages
    ):
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await publisher.stop()
    return parts / elapsed


async def check(bootstrap: str, topic: str, texts: dict[str, str]) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, str] = {}
    try:
        while len(seen) < len(texts):
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for m in (m for ms in batch.values() for m in ms):
                event = orjson.loads(m.value)
                seen[event["phone"]] = event["text"]
    finally:
        await consumer.stop()
    assert seen == texts, "texts read back differ"


async def main(count: int) -> None:
    parts, texts = messages(count)
    records = [orjson.dumps(part_record(p)) for p in parts]
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        suffix = uuid.uuid4().hex[:8]
        topics = TopicSettings(
            incoming=f"bench.incoming.{suffix}", incoming_parts=f"bench.parts.{suffix}"
        )
        kafka.create_topics([topics.incoming, topics.incoming_parts], partitions=3)
        base = Settings()
        settings = dataclasses.replace(
            base,
            kafka=dataclasses.replace(base.kafka, bootstrap_servers=kafka.bootstrap_servers),
            topics=topics,
            reassembly=dataclasses.replace(base.reassembly, group_id=f"bench-{suffix}"),
        )
        await store(kafka.bootstrap_servers, topics.incoming_parts, parts)
        core = core_rate(records)
        service = await service_rate(settings, len(parts), count)
        await check(kafka.bootstrap_servers, topics.incoming, texts)
    print("| messages | parts | core parts/s | service parts/s | service / core |")
    print("|---|---|---|---|---|")
    print(f"| {count} | {len(parts)} | {core:,.0f} | {service:,.0f} | {service / core:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().messages))
