"""Records near Kafka's size limit among valid requests, through the sender as a process.

A 1 MB value (with a readable request_id, and without one) and a 512 KB key with an invalid
request: each must end on the dead-letter topic (a bounded copy with its sizes, digests and
the record's position), the ones with a readable request_id with a ``rejected`` result, and
none may hold its partition: the committed offsets reach the end of every partition, also
after the sender is restarted and more come.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.events.dead_letter import COPY_LIMIT_BYTES
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.test_send_path import PASSWORD, assert_group_has_no_lag, free_port, sender_env
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

VALID_PER_ROUND = 200
MB = 1_000_000  # a record of 1 MB and its batch header stay under the broker's 1 MiB limit


@dataclass(frozen=True)
class Pill:
    """A record that cannot be processed, as produced."""

    key: bytes
    value: bytes
    request_id: str | None  # when the value names one the sender can read

    def __repr__(self) -> str:  # keep a megabyte out of assertion messages
        return f"Pill(key={len(self.key)} B, value={len(self.value)} B, {self.request_id})"


def pills(run: str, round_no: int) -> list[Pill]:
    readable = f"{run}-big-{round_no}"
    keyed = f"{run}-bigkey-{round_no}"
    big_text = {
        "schema": "smsc.send-request/1",
        "request_id": readable,
        "recipients": ["+79051234567"],
        "text": "x" * MB,
    }
    no_recipients = {"schema": "smsc.send-request/1", "request_id": keyed, "text": "hi"}
    garbage = b"\xff%d" % round_no + b"garbage" * (MB // 7)  # not JSON: no request_id
    return [
        Pill(b"pill-a", orjson.dumps(big_text), readable),
        Pill(b"pill-b", garbage, None),
        Pill(b"k" * 512 * 1024, orjson.dumps(no_recipients), keyed),
    ]


def request(run: str, round_no: int, index: int) -> dict[str, Any]:
    return {
        "schema": "smsc.send-request/1",
        "request_id": f"{run}-{round_no}-{index}",
        "recipients": [f"+7906{round_no}{index:06d}"],
        "text": "poison pill neighbours",
    }


async def produce_round(kafka: LocalKafka, topic: str, run: str, round_no: int) -> list[Pill]:
    """Valid requests with the pills among them, in one partition each (by key)."""
    bad = pills(run, round_no)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, max_request_size=2 * MB, acks="all"
    )
    await producer.start()
    try:
        for i in range(VALID_PER_ROUND):
            value = orjson.dumps(request(run, round_no, i))
            await producer.send(topic, value, key=b"%d" % (i % 30))
            if i % 60 == 30:
                pill = bad[i // 60]
                await producer.send(topic, pill.value, key=pill.key)
        await producer.flush()
    finally:
        await producer.stop()
    return bad


async def read_topic(
    kafka: LocalKafka, topic: str, enough: int, wait_seconds: float
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """(key, validated event) of every record of ``topic``, read until ``enough`` or the wait
    ends."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=2 * MB,
    )
    await consumer.start()
    found: list[tuple[bytes | None, dict[str, Any]]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while len(found) < enough and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for message in (m for ms in batch.values() for m in ms):
                assert message.value is not None
                assert len(message.value) + len(message.key or b"") < 300_000, "not bounded"
                event = orjson.loads(message.value)
                validate_event(event)
                found.append((message.key, event))
    finally:
        await consumer.stop()
    return found


async def start_sender(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sender", env=env, stdout=log, stderr=log
        )


async def stop_sender(process: asyncio.subprocess.Process, log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 60)
    assert code == 0, log_tail(log_path)


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def check_dead_letter(event: dict[str, Any], key: bytes | None, pill: Pill, topic: str) -> None:
    assert event["origin"]["topic"] == topic
    assert event["truncated"] is True
    assert (event["key_size"], event["value_size"]) == (len(pill.key), len(pill.value))
    assert event["key_sha256"] == hashlib.sha256(pill.key).hexdigest()
    assert event["value_sha256"] == hashlib.sha256(pill.value).hexdigest()
    assert base64.b64decode(event["value_base64"]) == pill.value[:COPY_LIMIT_BYTES]
    assert base64.b64decode(event["key_base64"]) == pill.key[:COPY_LIMIT_BYTES]
    long_key = len(pill.key) > COPY_LIMIT_BYTES
    assert key == (b"sha256:" + event["key_sha256"].encode() if long_key else pill.key)


async def test_records_near_the_size_limit_are_dead_lettered_and_hold_nothing_up(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    group = f"pills-{run}"
    log_path = tmp_path / "sender.log"
    config = SimulatorSettings(
        accounts={"gateway": PASSWORD}, rate_limit_per_second=None, duplicate_window_seconds=None
    )
    bad: list[Pill] = []
    async with SmppSimulator(config) as simulator:
        env = sender_env(kafka, topics, simulator.port, free_port(), group)
        for round_no in range(2):  # the second round after a restart of the sender
            bad += await produce_round(kafka, topics.send, run, round_no)
            sender = await start_sender(env, log_path)
            try:
                want = (round_no + 1) * (VALID_PER_ROUND + 2)  # each round: 2 rejected
                results = await read_topic(kafka, topics.send_results, want, 120)
                letters = await read_topic(kafka, topics.dead_letter, len(bad), 60)
                await asyncio.sleep(1)  # a commit interval or more
                await stop_sender(sender, log_path)
            finally:
                if sender.returncode is None:
                    sender.kill()
                    await sender.wait()
            await assert_group_has_no_lag(kafka, topics.send, group)
            env["GATEWAY_HTTP_PORT"] = str(free_port())

    outcomes = Counter(event["outcome"] for _, event in results)
    assert outcomes == {"accepted": 2 * VALID_PER_ROUND, "rejected": 4}, log_path.read_text()[
        -3000:
    ]
    rejected = {
        event["request_id"]: event for _, event in results if event["outcome"] == "rejected"
    }
    assert set(rejected) == {p.request_id for p in bad if p.request_id is not None}
    assert all(len(orjson.dumps(event)) < 2000 for event in rejected.values())
    assert len(letters) == len(bad) == 6
    by_sha = {event["value_sha256"]: (key, event) for key, event in letters}
    for pill in bad:
        key, event = by_sha[hashlib.sha256(pill.value).hexdigest()]
        check_dead_letter(event, key, pill, topics.send)
