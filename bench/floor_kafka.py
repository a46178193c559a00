"""The Kafka floor of the send pipeline: a plain aiokafka consume -> produce loop.

What the sender's Kafka side does at the least, with its settings and nothing else: a
consumer in its own group (manual commits, ``max_poll_records`` unbounded, batches of at most
``GATEWAY_SENDER_FETCH_MAX_RECORDS`` records), one small JSON result per request (the
request parsed, a result shaped and sized like the sender's ``smsc.send-result/1`` written),
sent by an idempotent producer with acks=all, ``linger_ms`` 2 and 256 KB batches (as
:class:`~gateway.kafka.client.KafkaPublisher`), and offsets committed once the batch's results
are acknowledged, at most every ``commit_interval_seconds`` (0.2 s) and at the end.

Run by ``bench/send_pipeline.py`` as its own process (``python bench/floor_kafka.py
BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP COUNT``), which reads its CPU from /proc; it exits once
``COUNT`` results are acknowledged and committed and its standard input is closed (so that
its /proc entry is there until the benchmark has read it).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.events.send_result import RecipientOutcome, send_result_event
from gateway.settings import SenderSettings


def result_template() -> dict[str, Any]:
    """One accepted single-recipient result as the sender writes it (ids and times vary)."""
    now = datetime.now(UTC)
    return send_result_event(
        request_id="template",
        outcome="accepted",
        occurred_at=now,
        received_at=now,
        transport="smpp",
        recipients=[RecipientOutcome("+79020000000", "accepted", ("100000001",))],
        attempts=1,
    )


def stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run(bootstrap: str, source: str, target: str, group: str, count: int) -> None:
    settings = SenderSettings()
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=None,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
    )
    await consumer.start()
    await producer.start()
    try:
        await loop(consumer, producer, target, count, settings)
    finally:
        await producer.stop()
        await consumer.stop()
    # Stay until the benchmark has read this process's CPU: it closes our standard input.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def loop(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    target: str,
    count: int,
    settings: SenderSettings,
) -> None:
    template = result_template()
    done = 0
    offsets: dict[TopicPartition, int] = {}
    committed_at = time.monotonic()
    while done < count:
        batches = await consumer.getmany(timeout_ms=100, max_records=settings.fetch_max_records)
        acks = []
        for tp, messages in batches.items():
            for message in messages:
                request = orjson.loads(message.value)
                request_id = request["request_id"]
                now = stamp()
                event = template | {
                    "request_id": request_id,
                    "occurred_at": now,
                    "received_at": now,
                }
                value = orjson.dumps(event)
                acks.append(await producer.send(target, value, key=request_id.encode()))
            offsets[tp] = messages[-1].offset + 1
        await asyncio.gather(*acks)
        done += len(acks)
        if done >= count or time.monotonic() - committed_at >= settings.commit_interval_seconds:
            await consumer.commit(dict(offsets))
            committed_at = time.monotonic()


def main() -> None:
    bootstrap, source, target, group, count = sys.argv[1:6]
    asyncio.run(run(bootstrap, source, target, group, int(count)))


if __name__ == "__main__":
    main()
