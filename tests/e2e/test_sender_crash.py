"""The sender killed with SIGKILL in the middle of a run, then started again.

Every request must end with exactly one result (repeats of it carry the same event_id), and
the requests submitted to the provider twice are at most the SMPP window: the ones in flight
at the kill whose result had not reached Kafka. Records whose result was already on Kafka
but whose offset was not committed yet are recognised and not sent again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.test_send_path import free_port, sender_env
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

COUNT = 20_000
WINDOW = 64


async def produce(kafka: LocalKafka, topic: str, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for i in range(COUNT):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7904{i:07d}"],
                "text": "crash test",
                "registered_delivery": False,
            }
            await producer.send(topic, orjson.dumps(request), key=str(i % 500).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def start_sender(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sender", env=env, stdout=out, stderr=out
        )


async def results_by_request(
    kafka: LocalKafka, topic: str, wait_seconds: float
) -> dict[str, set[str]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    by_request: dict[str, set[str]] = defaultdict(set)
    deadline = time.monotonic() + wait_seconds
    try:
        while len(by_request) < COUNT and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                if len(by_request) % 2000 == 0:
                    validate_event(event)
                assert event["outcome"] == "accepted", event
                by_request[event["request_id"]].add(event["event_id"])
    finally:
        await consumer.stop()
    return by_request


async def test_sigkill_mid_run_every_request_one_result_and_few_resends(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    await produce(kafka, topics.send, run)
    config = SimulatorSettings(
        accounts={"gateway": "pw"},
        rate_limit_per_second=None,
        duplicate_window_seconds=None,  # count resends ourselves instead of refusing them
        max_recorded_submits=2 * COUNT,
    )
    async with SmppSimulator(config) as simulator:
        env = sender_env(kafka, topics, simulator.port, free_port(), f"crash-{run}")
        env |= {
            "GATEWAY_SMPP_PASSWORD": "pw",
            "GATEWAY_SMPP_WINDOW": str(WINDOW),
            "GATEWAY_RATE_PER_SECOND": "3000",
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        log = tmp_path / "sender.log"
        first = await start_sender(env, log)
        while simulator.stats.submits < COUNT // 3:
            assert first.returncode is None, log.read_text()[-2000:]
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        killed_at = simulator.stats.submits
        env["GATEWAY_HTTP_PORT"] = str(free_port())
        second = await start_sender(env, log)
        try:
            by_request = await results_by_request(kafka, topics.send_results, 240)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 60)
        submits_per_phone = Counter(record.destination_addr for record in simulator.submits)

    assert killed_at < COUNT, "the kill must come in the middle of the run"
    assert len(by_request) == COUNT, log.read_text()[-3000:]
    assert all(len(ids) == 1 for ids in by_request.values()), "one result per request"
    resent = sum(1 for n in submits_per_phone.values() if n > 1)
    assert len(submits_per_phone) == COUNT
    assert resent <= WINDOW, f"{resent} requests were submitted twice"
