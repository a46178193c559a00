"""Kafka stops in the middle of a run of callbacks and comes back.

While it is down the ingress answers 503 (and /readyz says not ready); the simulator repeats
those callbacks on the provider's schedule (shortened), and once Kafka is back every callback
is in its topic. A callback may be stored more than once (a publish abandoned at its timeout
can still land), so events are counted by event_id: each expected id is there, no other.
The broker is a dedicated one, so stopping it does not disturb the rest of the suite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import pytest

from gateway.ingress.callback import parse_callback
from gateway.ingress.mapping import callback_event
from gateway.ingress.params import CallbackRequest, Rejection
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator.webhook import WebhookCaller
from gateway.simulator.webhook_request import (
    HandlerUrl,
    Notice,
    build_request,
    incoming_notice,
    status_notice,
    waitcall_notice,
)
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import SECRET, read_topic, running_ingress

pytestmark = pytest.mark.kafka

COUNT = 150
SPACING_SECONDS = 0.04


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


def notice(i: int) -> Notice:
    phone = f"7903{i:07d}"
    if i % 3 == 0:
        return status_notice(str(10_000 + i), phone, 1, ts=1_700_000_000 + i, cost="1.95")
    if i % 3 == 1:
        return incoming_notice(phone, f"Ответ {i}: ёлки", "79000000001", id=50_000 + i)
    return waitcall_notice(phone, 1_700_000_000 + i, callmenu=f"{i % 10}#")


def expected_event_id(handler: HandlerUrl, item: Notice) -> str:
    request = build_request(handler, item)
    callback = parse_callback(
        CallbackRequest("POST", request.url.partition("?")[2].encode(), request.body),
        "windows-1251",
    )
    assert not isinstance(callback, Rejection)
    return str(callback_event(callback, datetime.now(UTC)).event["event_id"])


async def readiness(port: int) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        return response.status


async def test_callbacks_survive_a_kafka_outage(own_kafka: LocalKafka) -> None:
    topics = TopicSettings()
    own_kafka.create_topics([topics.dlr, topics.incoming, topics.waitcall, topics.dead_letter])
    notices = [notice(i) for i in range(COUNT)]
    async with running_ingress(
        own_kafka.bootstrap_servers,
        topics,
        publish_timeout_seconds=1.5,
        readiness_interval_seconds=0.5,
    ) as ingress:
        url = f"http://127.0.0.1:{ingress.port}/smsc/callback?charset=utf-8&sha1={SECRET}"
        handler = HandlerUrl.parse(url)
        async with WebhookCaller(handler, retry_interval_seconds=1.0) as caller:
            for i, item in enumerate(notices):
                if i == COUNT // 3:
                    own_kafka.stop()
                    stopped_at = time.monotonic()
                caller.submit(item)
                await asyncio.sleep(SPACING_SECONDS)
            await asyncio.sleep(max(0.0, stopped_at + 8 - time.monotonic()))
            ready_while_down = await readiness(ingress.port)
            await asyncio.to_thread(own_kafka.start)
            async with asyncio.timeout(120):
                results = await caller.join()
        ready_after = await readiness(ingress.port)

    assert ready_while_down == 503
    assert ready_after == 200
    assert [r.outcome for r in results] == ["delivered"] * COUNT
    assert caller.stats.answers[503] > 0, caller.stats.answers
    assert set(caller.stats.answers) <= {200, 503}
    expected = {expected_event_id(handler, item) for item in notices}
    assert len(expected) == COUNT
    seen: set[str] = set()
    for topic, share in ((topics.dlr, 50), (topics.incoming, 50), (topics.waitcall, 50)):
        events = await read_topic(own_kafka.bootstrap_servers, topic, share, wait_seconds=60)
        for event in events:
            validate_event(event)
        ids = {e["event_id"] for e in events}
        assert len(ids) == share, topic  # counted by event_id: every callback once
        seen |= ids
    assert seen == expected
    assert await read_topic(own_kafka.bootstrap_servers, topics.dead_letter, 1, 1) == []
