"""Incoming SMS by polling on the real broker: the poller as a process fetches 1,000 messages
from the simulator's get.php, is killed with SIGKILL in the middle and started again. Every
provider id reaches Kafka, none is lost, a repeat carries the same event_id, and the same
messages posted by the simulator's webhook caller to the ingress carry those event_ids too."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator.http_api import HttpApiSimulator
from tests.e2e.account_support import PollerProcess, TopicWatcher, poller_env
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import sim_config
from tests.ingress.ingress_support import SECRET, running_ingress

pytestmark = pytest.mark.kafka

COUNT = 1000
PAGE = 20


def by_source(events: list[dict[str, Any]], source: str) -> dict[str, set[str]]:
    """Each provider incoming id's event ids, for one source."""
    found: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event["source"] == source:
            found[event["incoming_id"]].add(event["event_id"])
    return found


async def cursor_positions(kafka: LocalKafka, topic: str) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()
    records = [m for ms in batch.values() for m in ms]
    documents = [orjson.loads(m.value) for m in records]
    for document in documents:
        validate_event(document)
    return [d["position"] for d in documents]


async def test_polled_incoming_survive_sigkill_and_match_the_webhooks_event_ids(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        hook = f"http://127.0.0.1:{ingress.port}/smsc/callback?sha1={SECRET}&charset=utf-8"
        # Every request takes 20 ms: the kill lands while pages are still being fetched.
        config = sim_config(webhook_url=hook, processing_seconds=0.02)
        async with HttpApiSimulator(config) as sim, TopicWatcher(kafka, topics.incoming) as seen:
            for i in range(COUNT):
                sim.receive_sms(f"7901{i:07d}", f"ответ {i}", sms_id=100_000 + i)
            env = poller_env(
                kafka,
                topics,
                sim.base_url,
                GATEWAY_POLLER_INCOMING_BATCH=str(PAGE),
                GATEWAY_POLLER_INCOMING_INTERVAL_SECONDS="0.2",
                GATEWAY_CALL_CONFIRM_ENABLED="false",
            )
            poller = PollerProcess(env, tmp_path / "poller.log")
            await poller.start()
            try:
                await seen.until(lambda e: len(by_source(e, "poll")) >= COUNT // 4)
                await poller.kill()
                killed_at = len(by_source(seen.events, "poll"))
                await poller.start()
                events = await seen.until(
                    lambda e: (
                        len(by_source(e, "poll")) >= COUNT and len(by_source(e, "webhook")) >= COUNT
                    ),
                    wait_seconds=120,
                )
            finally:
                await poller.stop()
            await sim.join_callbacks()
        positions = await cursor_positions(kafka, topics.poll_cursor)

    polled, pushed = by_source(events, "poll"), by_source(events, "webhook")
    ids = {str(i) for i in range(1, COUNT + 1)}
    assert killed_at < COUNT, "the kill must come in the middle of the run"
    assert set(polled) == ids, "every provider id on Kafka, none lost"
    assert all(len(event_ids) == 1 for event_ids in polled.values()), "repeats share event_id"
    assert polled == pushed, "webhook and polling give one message one event_id"
    repeats = sum(1 for e in events if e["source"] == "poll") - COUNT
    # The restart resumed from the cursor: at most the page in flight at the kill came again.
    assert repeats <= PAGE, repeats
    assert positions == sorted(positions)
    assert positions[-1] == COUNT
    one = next(e for e in events if e["source"] == "poll" and e["incoming_id"] == "7")
    assert (one["phone"], one["to"], one["text"]) == ("79010000006", "79309990000", "ответ 6")
    assert one["sms_id"] is None  # get_answers does not say which message it answers
    webhook = next(e for e in events if e["source"] == "webhook" and e["incoming_id"] == "7")
    assert webhook["sms_id"] == "100006"
