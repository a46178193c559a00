"""What the end-to-end tests share: settings for an in-process sender, reading results."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from gateway.localkafka import RunningKafka
from gateway.settings import Settings, TopicSettings
from tests.eventcheck import validate_event


def sender_settings(
    kafka: RunningKafka, topics: TopicSettings, smpp_port: int, group_id: str, password: str
) -> Settings:
    """Settings of a sender bound to the local simulator, probes on a free port."""
    base = Settings()
    return dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, bootstrap_servers=kafka.bootstrap_servers),
        topics=topics,
        smpp=dataclasses.replace(
            base.smpp,
            hosts=(f"127.0.0.1:{smpp_port}",),
            system_id="gateway",
            password=password,
            source_addr="Shop",
        ),
        sender=dataclasses.replace(base.sender, group_id=group_id),
        http=dataclasses.replace(base.http, host="127.0.0.1", port=0),
    )


async def results_by_request(
    kafka: RunningKafka, topic: str, want: int, wait_seconds: float = 60
) -> dict[str, dict[str, Any]]:
    """The last result of each request_id, each validated, until ``want`` requests have one."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + wait_seconds
    try:
        while len(found) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                validate_event(event)
                found[event["request_id"]] = event
    finally:
        await consumer.stop()
    return found


async def read_events(
    kafka: RunningKafka,
    topics: str | Sequence[str],
    enough: Callable[[list[dict[str, Any]]], bool],
    wait_seconds: float = 60,
) -> list[dict[str, Any]]:
    """Every event on ``topics`` from their start, each validated against its schema, read
    until ``enough(events)`` or the wait ends."""
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while not enough(events) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300, max_records=10_000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                validate_event(event)
                events.append(event)
    finally:
        await consumer.stop()
    return events
