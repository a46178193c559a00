"""Roles as processes on the cluster: replicas, the requests they take, what they publish,
and the cluster's view of leaders and groups."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from gateway.localkafka import LocalKafkaCluster, RunningKafka
from gateway.settings import TopicSettings
from tests.e2e.test_send_path import free_port, sender_env

PASSWORD = "clu-pw"

#: Reports one line of a test's figures (the ``figures`` fixture).
Figures = Callable[[str], None]


def requests(run: str, count: int, keys: int, *, reports: bool) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` single-part send requests over ``keys`` keys; the text holds
    the key and the request's place among that key's requests, so order can be checked."""
    out = []
    for i in range(count):
        key, seq = i % keys, i // keys
        request = {
            "schema": "smsc.send-request/1",
            "request_id": f"{run}-{i}",
            "recipients": [f"+7907{i:07d}"],
            "text": f"k{key} s{seq}",
            "registered_delivery": reports,
        }
        out.append((str(key).encode(), orjson.dumps(request)))
    return out


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def replica_env(
    kafka: RunningKafka,
    topics: TopicSettings,
    smpp_port: int,
    group_id: str,
    **settings: str,
) -> dict[str, str]:
    """The environment of one ``smsc-gateway sender`` replica; ``settings`` are
    ``GATEWAY_<NAME>`` overrides (``SMPP_WINDOW="64"``)."""
    env = sender_env(kafka, topics, smpp_port, free_port(), group_id)
    env |= {"GATEWAY_SMPP_PASSWORD": PASSWORD, "GATEWAY_LOG_LEVEL": "WARNING"}
    return env | {f"GATEWAY_{name}": value for name, value in settings.items()}


@dataclass
class Replica:
    """One role process (``smsc-gateway <role>``) with its log file."""

    name: str
    env: dict[str, str]
    log: Path
    role: str = "sender"
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", self.role, env=self.env, stdout=out, stderr=out
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout_seconds: float = 60) -> int | None:
        """SIGTERM and the exit status; SIGKILL (and None) if it is not gone in time."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout_seconds)
        except TimeoutError:
            await self.kill()
            return None

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-3000:]


@dataclass
class Seen:
    """Everything read from some topics, in order: (topic, key, event)."""

    records: list[tuple[str, bytes | None, dict[str, Any]]] = field(default_factory=list)

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [event for t, _, event in self.records if t == topic]

    def ids_by(self, topic: str, fact: str) -> dict[str, set[str]]:
        """The event_ids on ``topic`` for each value of the field ``fact``."""
        found: dict[str, set[str]] = defaultdict(set)
        for event in self.of(topic):
            found[event[fact]].add(event["event_id"])
        return found


async def follow(bootstrap: str, topics: list[str], seen: Seen, done: asyncio.Event) -> None:
    """Read ``topics`` from the start into ``seen`` until ``done`` is set."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for message in (m for ms in batch.values() for m in ms):
                seen.records.append((message.topic, message.key, orjson.loads(message.value)))
    finally:
        await consumer.stop()


async def wait_for(
    what: str, check: Callable[[], bool], seconds: float, *replicas: Replica
) -> float:
    """Poll ``check()`` until true; the seconds it took. Fails if a replica exits or time is up."""
    started = time.monotonic()
    while not check():
        for replica in replicas:
            assert replica.alive(), (
                f"{replica.name} exited while waiting for {what}\n{replica.tail()}"
            )
        tails = "\n".join(r.tail() for r in replicas)
        assert time.monotonic() - started < seconds, f"no {what} within {seconds} s\n{tails}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def group_members(bootstrap: str, group_id: str) -> tuple[str, int] | None:
    """The consumer group's state and member count, None if the cluster does not answer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(10):
            await admin.start()
            (response,) = await admin.describe_consumer_groups([group_id])
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()
    (group,) = response.to_object()["groups"]
    return str(group["state"]), len(group["members"])


def new_leader(cluster: LocalKafkaCluster, topic: str, old: int, partition: int = 0) -> int:
    """The broker leading the partition once it is no longer ``old`` (blocking: run it in a
    thread); fails after 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        leader = cluster.leader_of(topic, partition)
        if leader not in (old, -1):
            return leader
        time.sleep(0.2)
    raise AssertionError(f"{topic}:{partition} has no new leader 60 s after broker {old} died")
