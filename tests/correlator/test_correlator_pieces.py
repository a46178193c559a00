"""The correlator's smaller pieces: deadline index, codecs, and the co-partitioning check."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.correlator.deadlines import DeadlineIndex
from gateway.correlator.model import (
    HeldReport,
    HeldReports,
    PartEntry,
    RoutedReport,
    decode_entry,
    decode_held,
    encode_entry,
    encode_held,
    part_key,
)
from gateway.correlator.topology import (
    CopartitioningError,
    carry_over_offsets,
    mismatches,
    prepare_topics,
)
from gateway.events.dead_letter import Origin
from gateway.localkafka import LocalKafka
from gateway.settings import KafkaSettings, TopicSettings
from gateway.settings.correlator import CorrelatorSettings


def test_deadline_index_pops_each_partition_when_due() -> None:
    index = DeadlineIndex(granularity_seconds=1.0)
    index.add(0, "a", 10.2)
    index.add(0, "b", 12.0)
    index.add(1, "c", 10.5)
    assert index.pop_due(0, 10.9) == []
    assert index.pop_due(0, 11.0) == ["a"]
    assert index.pop_due(0, 11.5) == []
    assert index.pop_due(1, 11.0) == ["c"]
    assert index.pop_due(0, 100) == ["b"]
    index.add(0, "d", 1.0)
    index.clear()
    assert index.pop_due(0, 100) == []


def test_table_values_survive_their_codec() -> None:
    entry = PartEntry(
        request_id="r",
        phone="79001234567",
        tags={"a": "b"},
        submitted_at=1.5,
        message_ids=("1", "2"),
        index=2,
        partition=1,
        expires_at=9.0,
        final_status="delivered",
        final_at=3.0,
        completed=True,
    )
    assert decode_entry(encode_entry(entry)) == entry
    routed = RoutedReport(Origin("kafka", "t", 1, 7), b"\xff\x00", b'{"x":1}')
    held = HeldReports(2, (HeldReport(routed, 4.0), HeldReport(routed, 5.0)))
    assert decode_held(encode_held(held)) == held
    released = HeldReports(2, held.reports, released_at=6.0)
    assert decode_held(encode_held(released)) == released


def test_key_normalizes_both_halves() -> None:
    assert part_key("0x1A", "+7 900 123-45-67") == part_key("26", "79001234567") == "26/79001234567"


def test_mismatches_name_every_wrong_topic() -> None:
    assert mismatches({"route": 6, "a-changelog": 6}, 6) == []
    assert mismatches({"route": 6, "a-changelog": 3}, 6) == ["a-changelog has 3 partitions"]


@pytest.mark.kafka
async def test_start_refuses_a_changelog_with_another_partition_count(kafka: LocalKafka) -> None:
    run = uuid.uuid4().hex[:6]
    changelog = f"correlator-{run}-parts-changelog"
    kafka.create_topics([changelog], partitions=2)
    settings = CorrelatorSettings(
        app_id=f"correlator-{run}", route_topic=f"route-{run}", partitions=3, replication_factor=1
    )
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    with pytest.raises(CopartitioningError, match=f"{changelog} has 2 partitions"):
        await prepare_topics(kafka_settings, settings, [changelog], [], asyncio.Event())
    assert await prepare_topics(
        kafka_settings, settings, [f"correlator-{run}-held-changelog"], [], asyncio.Event()
    )


async def _commit(kafka: LocalKafka, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _committed(kafka: LocalKafka, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        return {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_the_route_group_starts_where_the_apps_route_agent_stopped(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    run = uuid.uuid4().hex[:6]
    app, route = f"correlator-{run}", f"correlator-{run}-route"
    inputs = [topics.send_results, topics.dlr]
    old = {TopicPartition(topics.send_results, 0): 7, TopicPartition(topics.dlr, 2): 12}
    elsewhere = {TopicPartition(topics.status, 1): 3}  # the app's, but not an input
    await _commit(kafka, app, old | elsewhere)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    assert await carry_over_offsets(settings, app, route, inputs) == old
    assert await _committed(kafka, route) == old
    # Once the route group has offsets of its own, they are its: nothing is carried again.
    await _commit(kafka, route, {TopicPartition(topics.dlr, 2): 40})
    assert await carry_over_offsets(settings, app, route, inputs) == {}
    assert (await _committed(kafka, route))[TopicPartition(topics.dlr, 2)] == 40
