"""The correlator's consumer lag, read from faust's consumer on the real broker.

A faust app whose agent is held back falls behind by every record produced; the reporter
shows that backlog per partition for the app's group, and nothing once the agent caught up
and faust committed. The changelog partitions faust also reads are never reported. Then the
correlator role itself, as a process: its /metrics has the lag of every partition it reads,
the inputs (the route stage's group, ``<app_id>-route``) at 0 once it has worked through what
was produced, and the route topic (the faust app's group).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaProducer
from faust.types import StreamT
from prometheus_client.parser import text_string_to_metric_families

from gateway.correlator.lag import reporting_lag
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import Settings, TopicSettings
from tests.correlator.runkit import CorrelatorProcess, build_traffic, correlator_env, produce

pytestmark = pytest.mark.kafka

COUNT = 30


def lag(metrics: Metrics, group: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "smsc_kafka_consumer_lag" and s.labels["group"] == group
    }


async def until(
    condition: Callable[[], bool], seconds: float, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what if isinstance(what, str) else what()
        await asyncio.sleep(0.2)


def held_back_app(kafka: LocalKafka, topic: str, data_dir: Path) -> tuple[faust.App, asyncio.Event]:
    app = faust.App(
        f"lag-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{kafka.bootstrap_servers}",
        store="memory://",
        datadir=str(data_dir),
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        topic_partitions=2,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
    )
    release = asyncio.Event()
    # A table, so faust reads a changelog too: it must not show up as lag.
    app.Table("seen", partitions=2, key_type=bytes, value_type=bytes)

    async def slow(stream: StreamT[bytes]) -> None:
        async for _ in stream:
            await release.wait()

    app.agent(app.topic(topic, key_type=bytes, value_type=bytes), name="slow")(slow)
    return app, release


async def test_a_faust_app_held_back_shows_its_backlog_until_it_catches_up(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    topic = f"lag-input.{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(COUNT):
            await producer.send_and_wait(topic, b"x", key=str(i).encode(), partition=i % 2)
    finally:
        await producer.stop()
    settings = dataclasses.replace(Settings().kafka, bootstrap_servers=kafka.bootstrap_servers)
    metrics = Metrics()
    app, release = held_back_app(kafka, topic, tmp_path)
    group = app.conf.id
    await app.start()
    try:
        async with reporting_lag(app, settings, metrics, [topic]):
            half = {(topic, "0"): COUNT / 2, (topic, "1"): COUNT / 2}
            await until(lambda: lag(metrics, group) == half, 60, f"a backlog of {COUNT}")
            release.set()
            done = {(topic, "0"): 0.0, (topic, "1"): 0.0}
            await until(lambda: lag(metrics, group) == done, 60, "the backlog worked off")
    finally:
        await app.stop()
    assert lag(metrics, group) == {}


async def test_the_correlator_role_exports_the_lag_of_its_inputs_and_route_topic(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    traffic = build_traffic(topics, run, sends=20, strays=0, seed=3)
    await produce(kafka.bootstrap_servers, traffic.records, 1000)
    env = correlator_env(kafka, topics, run, tmp_path / "state")
    correlator = CorrelatorProcess(env, tmp_path / "correlator.log")
    await correlator.start()
    port = int(env["GATEWAY_HTTP_PORT"])
    route = env["GATEWAY_CORRELATOR_ROUTE_TOPIC"]
    app_id = env["GATEWAY_CORRELATOR_APP_ID"]
    consumed = {
        (f"{app_id}-route", topics.send_results),
        (f"{app_id}-route", topics.dlr),
        (app_id, route),
    }
    last: dict[tuple[str, str, str], float] = {}

    def caught_up() -> bool:
        assert correlator.process is not None
        assert correlator.process.returncode is None, correlator.tail()
        try:
            lag = scrape_lag(port)
        except OSError:
            return False  # not serving yet
        ours = {k: v for k, v in lag.items() if k[0] in {app_id, f"{app_id}-route"}}
        last.clear()
        last.update(ours)
        # Every partition of what the agents read, and nothing else (no changelog). The route
        # topic gets a timer tick per partition every 0.5 s, so it is always a tick or two
        # behind; the inputs are worked off.
        inputs = [v for (_, t, _), v in ours.items() if t != route]
        ticks = [v for (_, t, _), v in ours.items() if t == route]
        read = {(g, t) for g, t, _ in ours}
        return read == consumed and not any(inputs) and bool(ticks) and max(ticks) <= 5

    try:
        await until(caught_up, 120, lambda: f"the inputs worked off, not {last}")
    finally:
        assert await correlator.stop() == 0, correlator.tail()


def scrape_lag(port: int) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "smsc_kafka_consumer_lag"
    }
