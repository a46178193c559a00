"""The sender as a process through a broker stopped with SIGTERM and started again.

Stopping a broker cleanly first moves its partitions' leadership away; with one broker the
partitions are left without a leader, and a producer that asks for metadata just then keeps
that answer while the broker is gone. Its batches expire after the request timeout (short
here), each leaving a gap in the idempotent producer's sequence, after which the broker
refuses every later batch of that producer (OutOfOrderSequenceNumber). The sender must
replace its producer and publish again what was not acknowledged: every request ends with
exactly one result, without a restart; ``/readyz`` says 503 while nothing can be published
and 200 once it can again; the outage is logged in a few hundred lines, not thousands.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.test_send_path import PASSWORD, assert_group_has_no_lag, free_port, sender_env
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

COUNT = 3000
OUTAGE_SECONDS = 40.0


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    """A broker of this test's own: it is stopped and started again."""
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


def new_topics(kafka: LocalKafka) -> TopicSettings:
    suffix = uuid.uuid4().hex[:8]
    defaults = TopicSettings()
    topics = TopicSettings(
        **{name: f"{getattr(defaults, name)}.{suffix}" for name in defaults.__dataclass_fields__}
    )
    kafka.create_topics([getattr(topics, name) for name in topics.__dataclass_fields__], 3)
    return topics


async def produce_requests(kafka: LocalKafka, topic: str, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for i in range(COUNT):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7905{i:07d}"],
                "text": "restart test",
            }
            await producer.send(topic, orjson.dumps(request), key=str(i % 300).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def results_by_request(
    kafka: LocalKafka, topic: str, wait_seconds: float
) -> dict[str, set[str]]:
    """The event ids of each request's results, read until every request has one."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, set[str]] = defaultdict(set)
    deadline = time.monotonic() + wait_seconds
    try:
        while len(found) < COUNT and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                validate_event(event)
                assert event["outcome"] == "accepted", event
                found[event["request_id"]].add(event["event_id"])
    finally:
        await consumer.stop()
    return found


async def wait_ready(http: httpx.AsyncClient, want: int, wait_seconds: float) -> float:
    """Seconds until ``/readyz`` answered ``want``; fails the test if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < wait_seconds:
        try:
            if (await http.get("/readyz")).status_code == want:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"/readyz never answered {want} within {wait_seconds:.0f} s")


async def test_sender_recovers_after_batches_expired_without_a_leader(
    own_kafka: LocalKafka, tmp_path: Path
) -> None:
    topics = new_topics(own_kafka)
    run = uuid.uuid4().hex[:6]
    await produce_requests(own_kafka, topics.send, run)
    config = SimulatorSettings(
        accounts={"gateway": PASSWORD},
        dlr_delay_seconds=1.0,
        response_timeout_seconds=2.0,
        dlr_retry_seconds=1.0,
        rate_limit_per_second=None,
        duplicate_window_seconds=None,
        max_recorded_submits=2 * COUNT,
    )
    async with SmppSimulator(config) as simulator:
        http_port = free_port()
        env = sender_env(own_kafka, topics, simulator.port, http_port, f"restart-{run}")
        env |= {
            # Batches expire after the request timeout while their partition has no leader.
            "GATEWAY_KAFKA_REQUEST_TIMEOUT_SECONDS": "1",
            "GATEWAY_KAFKA_DELIVERY_TIMEOUT_SECONDS": "3",
            "GATEWAY_SENDER_RETRY_INITIAL_SECONDS": "0.2",
            "GATEWAY_SENDER_RETRY_MAX_SECONDS": "1",
            # The producer refreshes its metadata every 10 ms, so it sees the partitions
            # without a leader in the moment between the broker moving them away and closing
            # its port (about 0.1 s); at the default 5 minutes that is a matter of luck.
            "GATEWAY_KAFKA_METADATA_MAX_AGE_SECONDS": "0.01",
            "GATEWAY_RATE_PER_SECOND": "150",  # the run lasts through the outage
        }
        log_path = tmp_path / "sender.log"
        with log_path.open("wb") as log:
            sender = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "sender", env=env, stdout=log, stderr=log
            )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
                await wait_ready(http, 200, 60)
                while simulator.stats.submits < COUNT // 4:
                    assert sender.returncode is None, log_path.read_text()[-3000:]
                    await asyncio.sleep(0.05)
                lines_before = len(log_path.read_bytes().splitlines())
                down_at = simulator.stats.submits
                await asyncio.to_thread(own_kafka.stop)  # SIGTERM: a clean shutdown
                unready_after = await wait_ready(http, 503, 20)
                await asyncio.sleep(OUTAGE_SECONDS - unready_after)
                await asyncio.to_thread(own_kafka.start)
                ready_after = await wait_ready(http, 200, 60)
                outage_lines = len(log_path.read_bytes().splitlines()) - lines_before
                by_request = await results_by_request(own_kafka, topics.send_results, 180)
                metrics = (await http.get("/metrics")).text
            sender.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(sender.wait(), 60) == 0, log_path.read_text()[-3000:]
        finally:
            if sender.returncode is None:
                sender.kill()
                await sender.wait()

    log_tail = log_path.read_text(errors="replace")[-3000:]
    assert down_at < COUNT // 2, "the outage must come in the middle of the run"
    assert len(by_request) == COUNT, log_tail
    assert all(len(ids) == 1 for ids in by_request.values()), "one result per request"
    await assert_group_has_no_lag(own_kafka, topics.send, f"restart-{run}")
    assert simulator.stats.submits == COUNT  # the outage made nothing be sent twice
    assert ready_after < 30, f"/readyz took {ready_after:.0f} s to come back"
    # The outage broke the producer's sequence, and the producer was replaced.
    assert "smsc_kafka_producer_replacements_total{" in metrics, log_tail
    assert outage_lines <= 400, f"{outage_lines} log lines for a {OUTAGE_SECONDS:.0f} s outage"
