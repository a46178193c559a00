"""The send path end to end on the real broker.

Requests are produced by kcat (an independent Kafka client); the sender runs as the real
``smsc-gateway sender`` process configured through the environment; the project's simulator
plays the provider.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.localkafka import LocalKafka, RunningKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

PASSWORD = "e2e-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SenderRun:
    process: asyncio.subprocess.Process
    http_port: int
    group_id: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def sender_env(
    kafka: RunningKafka, topics: TopicSettings, smpp_port: int, http_port: int, group_id: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {f"GATEWAY_TOPICS_{name.upper()}": value for name, value in vars_of(topics).items()}
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_SMPP_HOSTS": f"127.0.0.1:{smpp_port}",
        "GATEWAY_SMPP_SYSTEM_ID": "gateway",
        "GATEWAY_SMPP_PASSWORD": PASSWORD,
        "GATEWAY_SMPP_SOURCE_ADDR": "E2E",
        "GATEWAY_SMPP_WINDOW": "64",
        # This test is about the path, not the pace: allow far more than the simulator needs.
        "GATEWAY_RATE_PER_SECOND": "5000",
        "GATEWAY_SENDER_GROUP_ID": group_id,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(http_port),
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    return env


def vars_of(topics: TopicSettings) -> dict[str, str]:
    return {name: getattr(topics, name) for name in topics.__dataclass_fields__}


def kcat_produce(kafka: LocalKafka, topic: str, records: list[tuple[str, bytes]]) -> None:
    lines = b"\n".join(key.encode() + b"\t" + value for key, value in records) + b"\n"
    subprocess.run(
        ["kcat", "-P", "-b", kafka.bootstrap_servers, "-t", topic, "-K", "\t"],
        input=lines,
        check=True,
        timeout=60,
    )


def request(run: str, index: int, text: str) -> dict[str, Any]:
    return {
        "schema": "smsc.send-request/1",
        "request_id": f"{run}-{index:05d}",
        "recipients": [f"+7901{index:07d}"],
        "text": text,
        "tags": {"run": run, "n": str(index)},
    }


@pytest.fixture
async def simulator() -> AsyncIterator[SmppSimulator]:
    config = SimulatorSettings(
        accounts={"gateway": PASSWORD}, dlr_delay_seconds=0.2, rate_limit_per_second=None
    )
    async with SmppSimulator(config) as sim:
        yield sim


@pytest.fixture
async def sender(
    kafka: LocalKafka, topics: TopicSettings, simulator: SmppSimulator, tmp_path: Path
) -> AsyncIterator[SenderRun]:
    """``smsc-gateway sender`` as its own process, configured through the environment."""
    http_port = free_port()
    group_id = f"e2e-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "sender.log"
    env = sender_env(kafka, topics, simulator.port, http_port, group_id)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sender", env=env, stdout=log, stderr=log
        )
        try:
            yield SenderRun(process, http_port, group_id, log_path)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def consume_until(
    kafka: LocalKafka, topic: str, want: int, wait_seconds: float = 120.0
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while len(events) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
        # Anything beyond ``want`` would be a duplicate: read a little longer to see it.
        batch = await consumer.getmany(timeout_ms=1000)
        events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()
    return events


async def test_thousand_requests_from_kcat_get_exactly_one_accepted_result_each(
    kafka: LocalKafka,
    topics: TopicSettings,
    simulator: SmppSimulator,
    sender: SenderRun,
) -> None:
    run = uuid.uuid4().hex[:8]
    texts = ("Your code is 1234", "Код: 1234", "Braces {ok} and € sign")
    requests = [request(run, i, texts[i % 3]) for i in range(1000)]
    for item in requests:
        validate_event(item)
    kcat_produce(kafka, topics.send, [(r["recipients"][0], orjson.dumps(r)) for r in requests])

    results = await consume_until(kafka, topics.send_results, 1000)
    for event in results:
        validate_event(event)
    by_id = Counter(event["request_id"] for event in results)
    assert len(results) == 1000, sender.log_tail()
    assert set(by_id) == {r["request_id"] for r in requests}
    assert all(n == 1 for n in by_id.values())
    assert {e["outcome"] for e in results} == {"accepted"}
    assert all(e["tags"]["run"] == run for e in results)
    message_ids = [rec["message_ids"][0] for e in results for rec in e["recipients"]]
    assert len(set(message_ids)) == 1000
    assert all(m.isdigit() for m in message_ids)
    assert simulator.stats.submits == 1000

    reports = await consume_until(kafka, topics.dlr, 1000)
    for event in reports:
        validate_event(event)
    assert {e["message_id"] for e in reports} == set(message_ids)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sender.http_port}") as http:
        metrics = (await http.get("/metrics")).text
        assert (await http.get("/readyz")).status_code == 200
    assert 'smsc_smpp_submits_total{bind="smpp-0",command_status="ESME_ROK"} 1000.0' in metrics

    sender.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(sender.process.wait(), 60) == 0, sender.log_tail()
    await assert_group_has_no_lag(kafka, topics.send, sender.group_id)
    assert simulator.stats.submits == 1000  # nothing sent again on the way out


async def assert_group_has_no_lag(kafka: LocalKafka, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            assert await consumer.committed(tp) == ends[tp], f"uncommitted records on {tp}"
    finally:
        await consumer.stop()
