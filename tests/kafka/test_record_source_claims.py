"""KafkaRecordSource's claims on the real broker: what one consumer claimed before it went
away comes back to the next consumer of the group as replays, and commits keep the claim."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.kafka.claims import decode_claim
from gateway.kafka.client import KafkaRecordSource
from gateway.kafka.records import Partition, Record
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import Settings

pytestmark = pytest.mark.kafka

COUNT = 10


async def revoked(_: set[Partition]) -> None:
    return None


def source(kafka: LocalKafka, topic: str, group: str) -> KafkaRecordSource:
    settings = dataclasses.replace(
        Settings().kafka, bootstrap_servers=kafka.bootstrap_servers, request_timeout_seconds=10
    )
    return KafkaRecordSource(
        settings, Metrics(), topics=[topic], group_id=group, on_revoked=revoked, claims=True
    )


async def fetch_all(records: KafkaRecordSource, want: int) -> list[Record]:
    found: list[Record] = []
    async with asyncio.timeout(60):
        while len(found) < want:
            found += await records.fetch(0.5, COUNT)
    return found


async def committed(kafka: LocalKafka, group: str, tp: TopicPartition) -> tuple[int, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    return offsets[tp].offset, offsets[tp].metadata


async def test_records_claimed_by_a_consumer_that_went_away_are_replays(
    kafka: LocalKafka,
) -> None:
    topic, group = f"claims.{uuid.uuid4().hex[:8]}", f"claims-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(COUNT):
            await producer.send_and_wait(topic, str(i).encode())
    finally:
        await producer.stop()
    tp, partition = TopicPartition(topic, 0), Partition(topic, 0)

    first = source(kafka, topic, group)
    await first.start()
    try:
        records = await fetch_all(first, COUNT)
        assert not any(r.replay for r in records), "a fresh group has no replays"
        assert await first.claim(records[:6]) == records[:6]
        await first.commit({partition: 2})  # records 0 and 1 done; 2..5 were started
    finally:
        await first.stop()
    assert await committed(kafka, group, tp) == (2, "started-below=6")

    second = source(kafka, topic, group)
    await second.start()
    try:
        again = await fetch_all(second, COUNT - 2)
        assert [(r.offset, r.replay) for r in again] == [(o, o < 6) for o in range(2, COUNT)]
        await second.commit({partition: 4})
        offset, metadata = await committed(kafka, group, tp)
        assert (offset, decode_claim(metadata)) == (4, 6), "a commit carries the claim along"
        await second.claim(again)
        assert decode_claim((await committed(kafka, group, tp))[1]) == COUNT
        assert (await committed(kafka, group, tp))[0] == 4, "a claim never moves the offset"
    finally:
        await second.stop()


async def test_records_are_fetched_only_once_a_new_assignment_has_settled(
    kafka: LocalKafka,
) -> None:
    """``settle`` (the sender's read of the results to their end) comes between an
    assignment and the first records of it."""
    topic, group = f"settle.{uuid.uuid4().hex[:8]}", f"settle-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(COUNT):
            await producer.send_and_wait(topic, str(i).encode())
    finally:
        await producer.stop()
    settling, settled = asyncio.Event(), asyncio.Event()

    async def settle() -> None:
        settling.set()
        await settled.wait()

    settings = dataclasses.replace(
        Settings().kafka, bootstrap_servers=kafka.bootstrap_servers, request_timeout_seconds=10
    )
    records = KafkaRecordSource(
        settings, Metrics(), topics=[topic], group_id=group, on_revoked=revoked, settle=settle
    )
    await records.start()
    try:
        async with asyncio.timeout(30):
            while not settling.is_set():
                assert await records.fetch(0.2, COUNT) == []
        for _ in range(5):
            assert await records.fetch(0.2, COUNT) == [], "records before the settle ended"
        settled.set()
        assert [r.offset for r in await fetch_all(records, COUNT)] == list(range(COUNT))
    finally:
        await records.stop()
