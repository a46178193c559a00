"""Tests of the local Kafka tooling: a real broker, real clients, real processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gateway.localkafka import PINNED_VERSION, LocalKafka, LocalKafkaCluster, LocalKafkaError

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """Read ``count`` messages of ``topic`` from the beginning (no consumer group)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < count:
                batches = await consumer.getmany(timeout_ms=500)
                values.extend(m.value for ms in batches.values() for m in ms)
    finally:
        await consumer.stop()
    return values


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        yield broker


def test_pom_pins_the_same_version_as_the_code() -> None:
    pom = (REPO / "gateway" / "localkafka" / "pom.xml").read_text()
    assert f"<kafka.version>{PINNED_VERSION}</kafka.version>" in pom


@pytest.mark.kafka
async def test_produce_and_consume(kafka: LocalKafka) -> None:
    kafka.create_topics(["sms.test"], partitions=1)
    await _produce(kafka.bootstrap_servers, "sms.test", b"hello")
    assert await _consume_all(kafka.bootstrap_servers, "sms.test", 1) == [b"hello"]


@pytest.mark.kafka
async def test_create_topics_is_idempotent_and_sets_partitions(kafka: LocalKafka) -> None:
    kafka.create_topics(["t.three", "t.two"], partitions=2)
    kafka.create_topics(["t.two"], partitions=5)  # already exists: left as it is
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        topics = {t["topic"]: t for t in await admin.describe_topics(["t.three", "t.two"])}
    finally:
        await admin.close()
    assert {name: len(t["partitions"]) for name, t in topics.items()} == {
        "t.three": 2,
        "t.two": 2,
    }


@pytest.mark.kafka
async def test_auto_created_topics_get_the_configured_partition_count(kafka: LocalKafka) -> None:
    await _produce(kafka.bootstrap_servers, "auto.created", b"x")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics(["auto.created"])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == 3


@pytest.mark.kafka
async def test_stop_then_start_brings_back_the_same_broker_with_its_data() -> None:
    kafka = LocalKafka(num_partitions=1)
    try:
        kafka.start()
        bootstrap, data_dir, pid = kafka.bootstrap_servers, kafka.data_dir, kafka.pid
        assert pid is not None
        assert data_dir is not None
        await _produce(bootstrap, "survives", b"before the outage")

        kafka.stop()
        assert not kafka.is_running()
        assert kafka.pid is None
        assert not _alive(pid)
        assert _processes_mentioning(str(data_dir)) == []

        kafka.start()
        assert (kafka.bootstrap_servers, kafka.data_dir) == (bootstrap, data_dir)
        assert kafka.pid != pid
        assert await _consume_all(bootstrap, "survives", 1) == [b"before the outage"]
    finally:
        kafka.close()
    assert not data_dir.exists()
    assert _processes_mentioning(str(data_dir)) == []


@pytest.mark.kafka
def test_a_broker_that_cannot_start_reports_its_log() -> None:
    kafka = LocalKafka(extra_config={"num.network.threads": "not-a-number"})
    with pytest.raises(LocalKafkaError, match=r"num\.network\.threads"):
        kafka.start(timeout_seconds=60)
    assert not kafka.is_running()
    kafka.close()


@pytest.mark.kafka
def test_run_command_prints_bootstrap_and_stops_on_interrupt() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.localkafka", "run", "--partitions", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.fullmatch(r"KAFKA_BOOTSTRAP=127\.0\.0\.1:\d+\n", line), line
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    data_dir = re.search(r"data in (\S+)", stderr)
    assert data_dir is not None, stderr
    assert not Path(data_dir.group(1)).exists()
    assert _processes_mentioning(data_dir.group(1)) == []


async def _topic_config(bootstrap: str, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})]
        )
    finally:
        await admin.close()
    (resource,) = response.to_object()["resources"]
    return str({e["config_names"]: e["config_value"] for e in resource["config_entries"]}[name])


async def _produce_to(bootstrap: str, topic: str, partition: int, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


@pytest.mark.kafka
async def test_cluster_replicates_and_keeps_writing_with_a_broker_killed() -> None:
    cluster = LocalKafkaCluster(num_partitions=3)
    data_dir = cluster.data_dir
    try:
        cluster.start()
        bootstrap = cluster.bootstrap_servers
        assert len(bootstrap.split(",")) == 3
        cluster.create_topics(["replicated"], partitions=3)
        await _produce(bootstrap, "auto.replicated", b"created on first use")
        states = cluster.partitions(["replicated", "auto.replicated"])
        assert len(states) == 6
        assert all(sorted(state.isr) == [1, 2, 3] for state in states.values()), states
        for topic in ("replicated", "auto.replicated"):
            assert await _topic_config(bootstrap, topic, "min.insync.replicas") == "2"
        await _produce_to(bootstrap, "replicated", 0, b"before")

        leader = cluster.leader_of("replicated", 0)
        pid = cluster.pid(leader)
        assert pid is not None
        cluster.kill_broker(leader)
        assert not _alive(pid)
        assert not cluster.is_running(leader)
        # acks=all with one replica gone: taken once a new leader is elected
        await _produce_to(bootstrap, "replicated", 0, b"while one broker is down")
        assert cluster.leader_of("replicated", 0) not in (leader, -1)

        cluster.start_broker(leader)
        assert cluster.pid(leader) not in (None, pid)
        cluster.wait_in_sync(["replicated"])
        cluster.stop_broker(leader)  # a clean stop: its leaderships move before it goes
        assert leader not in {s.leader for s in cluster.partitions(["replicated"]).values()}
        cluster.start_broker(leader)
        values = await _consume_all(bootstrap, "replicated", 2)
        assert values == [b"before", b"while one broker is down"]
        assert cluster.crashed() == []
    finally:
        cluster.close()
    assert not data_dir.exists()
    assert _processes_mentioning(str(data_dir)) == []


@pytest.mark.kafka
def test_run_command_runs_a_cluster_and_takes_brokers_down_by_id() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.localkafka", "run", "--brokers", "3"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline()
        assert re.fullmatch(r"KAFKA_BOOTSTRAP=(127\.0\.0\.1:\d+,){2}127\.0\.0\.1:\d+\n", line), line
        started = process.stderr.readline()
        data_dir = re.search(r"data in (\S+)", started)
        assert data_dir is not None, started
        answers = []
        for command in ("kill 2", "start 2", "stop 9"):
            process.stdin.write(command + "\n")
            process.stdin.flush()
            while not (answer := process.stderr.readline()).startswith(command.split()[0]):
                pass
            answers.append(answer)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert answers[0] == "kill 2: done (pid None)\n"
    assert re.fullmatch(r"start 2: done \(pid \d+\)\n", answers[1]), answers[1]
    assert answers[2].startswith("stop 9 failed: no broker 9"), answers[2]
    assert process.returncode == 0, stderr
    assert not Path(data_dir.group(1)).exists()
    assert _processes_mentioning(data_dir.group(1)) == []
