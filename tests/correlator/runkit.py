"""A correlator process on the real broker, and the traffic the Kafka tests feed it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.send_result import RecipientOutcome, send_result_event
from gateway.localkafka import RunningKafka
from gateway.settings import TopicSettings
from tests.e2e.test_send_path import free_port, vars_of


def correlator_env(
    kafka: RunningKafka, topics: TopicSettings, run: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {f"GATEWAY_TOPICS_{name.upper()}": value for name, value in vars_of(topics).items()}
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_CORRELATOR_APP_ID": f"correlator-{run}",
        "GATEWAY_CORRELATOR_ROUTE_TOPIC": f"correlator-route-{run}",
        "GATEWAY_CORRELATOR_PARTITIONS": "3",
        "GATEWAY_CORRELATOR_REPLICATION_FACTOR": "1",
        "GATEWAY_CORRELATOR_DATA_DIR": str(data_dir),
        "GATEWAY_CORRELATOR_TICK_INTERVAL_SECONDS": "0.5",
        "GATEWAY_CORRELATOR_COMMIT_INTERVAL_SECONDS": "0.5",
    }
    return env | {f"GATEWAY_CORRELATOR_{k.upper()}": v for k, v in extra.items()}


@dataclass
class CorrelatorProcess:
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.env["GATEWAY_HTTP_PORT"] = str(free_port())
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "correlator", env=self.env, stdout=out, stderr=out
            )

    async def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        """SIGTERM, and the exit status; SIGKILL (and TimeoutError) if it does not stop."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            await self.kill()
            raise

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def running(process: CorrelatorProcess) -> AsyncIterator[CorrelatorProcess]:
    """The process started, and stopped on the way out whatever happened (never left
    behind); its exit status is in ``returncode`` afterwards."""
    await process.start()
    try:
        yield process
    finally:
        if process.returncode is None:
            await process.stop()


@dataclass
class Traffic:
    """Send results and their reports, shuffled: some reports before their result, strays."""

    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    parts: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    overall: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    early: int = 0


def build_traffic(
    topics: TopicSettings, run: str, sends: int, strays: int, seed: int, *, long: bool = True
) -> Traffic:
    rng = random.Random(seed)
    traffic = Traffic()
    placed: list[tuple[float, tuple[str, bytes, bytes]]] = []
    now = datetime.now(UTC)
    for i in range(sends):
        request_id, phone = f"{run}-{i}", f"7900{i:07d}"
        count = {0: 3, 1: 2}.get(i % 20, 1) if long else 1  # one in ten is a long message
        ids = tuple(str(10_000_000 + i * 10 + p) for p in range(count))
        tags = {"run": run, "i": str(i)}
        result = send_result_event(
            request_id=request_id,
            outcome="accepted",
            occurred_at=now,
            received_at=now,
            transport="smpp",
            recipients=[RecipientOutcome(phone=phone, status="accepted", message_ids=ids)],
            tags=tags,
        )
        placed.append((i, (topics.send_results, request_id.encode(), orjson.dumps(result))))
        statuses = ["undeliverable" if (i + n) % 17 == 0 else "delivered" for n in range(len(ids))]
        traffic.overall[request_id] = next((s for s in statuses if s != "delivered"), "delivered")
        for message_id, status in zip(ids, statuses, strict=True):
            traffic.parts[message_id] = (request_id, phone, tags)
            early = rng.random() < 0.1
            traffic.early += early
            offset = -rng.uniform(1, 100) if early else rng.uniform(1, 100)
            report = _report(message_id, phone, status)
            placed.append((i + offset, (topics.dlr, message_id.encode(), report)))
    for n in range(strays):
        message_id = str(90_000_000 + n)
        traffic.unknown.add(message_id)
        report = _report(message_id, f"7999{n:07d}", "delivered")
        placed.append((rng.uniform(0, sends), (topics.dlr, message_id.encode(), report)))
    traffic.records = [record for _, record in sorted(placed, key=lambda p: p[0])]
    return traffic


def _report(message_id: str, phone: str, status: str) -> bytes:
    stat = "DELIVRD" if status == "delivered" else "UNDELIV"
    report = DeliveryReport(
        source="smpp",
        message_id=message_id,
        phone=phone,
        status=status,
        final=True,
        stat=stat,
        received_at=datetime.now(UTC),
        err=0 if status == "delivered" else 1,
        raw={"text": f"id:{message_id} stat:{stat}"},
    )
    return orjson.dumps(dlr_event(report))


async def produce(bootstrap: str, records: list[tuple[str, bytes, bytes]], per_second: int) -> None:
    """Produce at a steady pace, the way reports and results trickle in from the sender."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        chunk = max(1, per_second // 10)
        for start in range(0, len(records), chunk):
            began = time.monotonic()
            for topic, key, value in records[start : start + chunk]:
                await producer.send(topic, value, key=key)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
        await producer.flush()
    finally:
        await producer.stop()


@dataclass
class Collected:
    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    keys: dict[str, bytes] = field(default_factory=dict)
    # The next offset to read, per (topic, partition): what a timeout compares with Kafka's
    # end offsets, to tell a stalled reader from a stalled worker.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)

    def of(self, schema: str, scope: str | None = None) -> list[dict[str, Any]]:
        return [
            docs[0]
            for docs in self.events.values()
            if docs[0]["schema"] == schema and (scope is None or docs[0].get("scope") == scope)
        ]


async def collect(bootstrap: str, topics: list[str], sink: Collected, done: asyncio.Event) -> None:
    """Read ``topics`` from the start into ``sink`` until ``done`` is set."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                sink.events[event["event_id"]].append(event)
                sink.keys[event["event_id"]] = message.key
                sink.positions[(message.topic, message.partition)] = message.offset + 1
    finally:
        await consumer.stop()


async def unread(bootstrap: str, topics: list[str], sink: Collected) -> dict[str, int]:
    """Records Kafka holds that ``sink``'s reader has not read yet, per topic-partition with
    any (empty when the reader is up to date: then a missing event was never written)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()  # metadata of every topic, for partitions_for_topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    behind = {
        f"{tp.topic}:{tp.partition}": end - sink.positions.get((tp.topic, tp.partition), 0)
        for tp, end in ends.items()
    }
    return {name: n for name, n in behind.items() if n}
