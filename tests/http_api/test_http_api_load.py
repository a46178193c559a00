"""2,000 HTTP sends from 50 concurrent producers through one transport, against the simulator
over real HTTP: the provider never has to answer error 9, every request is accepted once,
and every result is published on the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.events.envelope import dumps
from gateway.events.send_request import SendRequest
from gateway.events.send_result import overall_outcome, send_result_event
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.settings import KafkaSettings, TopicSettings
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import read_topic, send_request, wired

pytestmark = pytest.mark.kafka

REQUESTS = 2000
PRODUCERS = 50


async def test_2000_sends_from_50_producers_stay_within_the_limits_and_are_all_accepted(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    queue: asyncio.Queue[SendRequest] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(send_request(f"load-{i:05d}", f"7901{i:07d}", text=f"Code {i:04d}"))
    publisher = KafkaPublisher(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), Metrics())
    await publisher.start()
    # The simulator holds each request a little, so concurrency really builds up.
    sim = {"processing_seconds": 0.01, "balance": Decimal(1_000_000)}
    async with wired(sim, limit_window_seconds=60.0) as w:

        async def producer() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                results = await w.transport.send(request, urgent=False)
                recipients = [outcome for outcome, _ in results]
                event = send_result_event(
                    request_id=request.request_id,
                    outcome=overall_outcome(recipients),
                    occurred_at=datetime.now(UTC),
                    received_at=datetime.now(UTC),
                    transport="http",
                    recipients=recipients,
                    attempts=sum(attempts for _, attempts in results),
                )
                await publisher.publish(
                    topics.send_results, request.request_id.encode(), dumps(event)
                )

        try:
            await asyncio.wait_for(asyncio.gather(*(producer() for _ in range(PRODUCERS))), 300)
        finally:
            await publisher.stop()
        stats = w.sim.stats
    assert not [key for key in stats.errors if key[1] == 9], stats.errors
    assert sum(stats.errors.values()) == 0
    assert stats.sends_accepted == REQUESTS
    assert stats.peak_in_flight["all"] == 10, "the transport used its whole send concurrency"

    events = await read_topic(
        kafka.bootstrap_servers, topics.send_results, lambda e: len(e) >= REQUESTS
    )
    for event in events:
        validate_event(event)
    assert len(events) == REQUESTS
    assert {e["outcome"] for e in events} == {"accepted"}
    assert {e["attempts"] for e in events} == {1}
    ids = {e["recipients"][0]["message_ids"][0] for e in events}
    assert len(ids) == REQUESTS, "one provider id per request"
