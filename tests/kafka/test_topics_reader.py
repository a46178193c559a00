"""Following a topic on the real broker: whole records to a sink, or only each record's key
and timestamp (as the sender learns the outcomes on its results topic), the same records
either way."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from gateway.kafka.follow import TopicsReader
from gateway.kafka.records import Record
from gateway.localkafka import LocalKafka
from gateway.settings import Settings

pytestmark = pytest.mark.kafka


async def test_keys_are_the_records_keys_and_timestamps(kafka: LocalKafka) -> None:
    topic = f"follow.{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, b"v", key=f"k{i}".encode() if i % 5 else None)
    finally:
        await producer.stop()
    settings = dataclasses.replace(Settings().kafka, bootstrap_servers=kafka.bootstrap_servers)
    since_ms = int((time.time() - 60) * 1000)
    records: list[Record] = []
    keys: list[tuple[bytes | None, int]] = []
    by_record = TopicsReader(settings, [topic], records.append, since_ms=since_ms)
    by_key = TopicsReader(
        settings, [topic], keys=lambda k, ms: keys.append((k, ms)), since_ms=since_ms
    )
    tasks = [asyncio.create_task(reader.run()) for reader in (by_record, by_key)]
    try:
        async with asyncio.timeout(60):
            await by_record.caught_up()
            await by_key.caught_up()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(records) == 20
    assert sorted(keys, key=repr) == sorted(((r.key, r.timestamp_ms) for r in records), key=repr)


def test_a_reader_hands_records_one_way() -> None:
    settings = Settings().kafka
    with pytest.raises(ValueError, match="one of sink and keys"):
        TopicsReader(settings, ["t"], since_ms=0)
    with pytest.raises(ValueError, match="one of sink and keys"):
        TopicsReader(settings, ["t"], print, keys=lambda k, ms: None, since_ms=0)
