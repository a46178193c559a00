"""A status Kafka refuses: the correlator stops instead of committing past it, and publishes
it once restarted after the cause is gone. The role runs as a process on the real broker.

The status topic is made to refuse records over 200 bytes (``max.message.bytes``): every
status is larger, so Kafka answers each produce with MESSAGE_TOO_LARGE, an error no retry
can help. The worker must not ack the records those statuses came from: it exits with
status 1, and the next worker (the topic repaired) joins the same reports again.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from tests.correlator.runkit import (
    Collected,
    CorrelatorProcess,
    build_traffic,
    collect,
    correlator_env,
    produce,
    running,
)

pytestmark = pytest.mark.kafka

SENDS = 50


async def _max_message_bytes(kafka: LocalKafka, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        configs = {"max.message.bytes": str(limit)}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()


async def test_a_refused_status_stops_the_worker_and_comes_out_after_a_restart(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    traffic = build_traffic(topics, run, SENDS, 0, seed=7, long=False)
    env = correlator_env(kafka, topics, run, tmp_path / "state", store="rocksdb")
    await _max_message_bytes(kafka, topics.status, 200)
    first = CorrelatorProcess(env, tmp_path / "first.log")
    await first.start()
    assert first.process is not None
    try:
        await produce(kafka.bootstrap_servers, traffic.records, 1000)
        assert await asyncio.wait_for(first.process.wait(), 120) == 1, first.tail()
    finally:
        if first.process.returncode is None:
            await first.kill()
    assert "could not be stored" in first.tail()

    await _max_message_bytes(kafka, topics.status, 1024 * 1024)
    seen, done = Collected(), asyncio.Event()
    reader = asyncio.create_task(collect(kafka.bootstrap_servers, [topics.status], seen, done))
    try:
        async with running(CorrelatorProcess(env, tmp_path / "second.log")) as second:
            for _ in range(600):
                joined = {p["message_id"] for p in seen.of("smsc.status/1", "part")}
                if joined >= set(traffic.parts):
                    break
                assert second.returncode is None, second.tail()
                await asyncio.sleep(0.2)
            assert joined == set(traffic.parts), second.tail()
    finally:
        done.set()
        await reader
    assert second.returncode == 0, second.tail()
