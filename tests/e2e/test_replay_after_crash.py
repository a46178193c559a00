"""``smsc-gateway all`` killed with SIGKILL mid-run, then started again, against a provider
that refuses identical submits for 60 s (its duplicate rule).

The requests in flight at the kill are consumed again. Those whose first submit went through
are refused as duplicates when resent: that refusal is their answer (``duplicate``), not a
reason to retry until the window ends and deliver the message a second time. So: no
subscriber gets a message twice, and every request has exactly one result; the first
submit's delivery report is joined to the request by the correlator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.e2e.support import read_events
from tests.e2e.test_all_role import all_env, ready
from tests.e2e.test_send_path import PASSWORD, free_port

pytestmark = pytest.mark.kafka

COUNT = 3000
WINDOW = 64


async def produce(kafka: LocalKafka, topic: str, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for i in range(COUNT):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7907{i:07d}"],
                "text": f"replay test {run}",
            }
            await producer.send(topic, orjson.dumps(request), key=str(i % 100).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def start_all(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "all", env=env, stdout=out, stderr=out
        )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def test_sigkill_mid_run_never_delivers_a_message_twice(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    await produce(kafka, topics.send, run)
    config = SimulatorSettings(
        accounts={"gateway": PASSWORD},
        rate_limit_per_second=None,
        duplicate_window_seconds=60.0,
        dlr_delay_seconds=1.0,
        max_recorded_submits=2 * COUNT,
    )
    async with SmppSimulator(config) as simulator:
        env = all_env(kafka, topics, simulator.port, tmp_path / "correlator")
        env |= {"GATEWAY_SMPP_WINDOW": str(WINDOW), "GATEWAY_RATE_PER_SECOND": "3000"}
        log = tmp_path / "all.log"
        first = await start_all(env, log)
        # In the middle of a fetched batch (the sender takes up to 500 records at a time):
        # at a batch's end the last submits are answered and their results stored while the
        # sender claims the next batch, and a kill then leaves no submit in flight.
        while simulator.stats.submits < COUNT // 3 + 250:
            assert first.returncode is None, tail(log)
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        killed_at = simulator.stats.submits
        env["GATEWAY_HTTP_PORT"] = str(free_port())
        env["GATEWAY_INGRESS_PORT"] = str(free_port())
        second = await start_all(env, log)
        try:
            restarted = time.monotonic()
            await ready(f"http://127.0.0.1:{env['GATEWAY_HTTP_PORT']}", seconds=120)
            ready_after = time.monotonic() - restarted
            results = await read_events(
                kafka,
                topics.send_results,
                lambda events: len({e["request_id"] for e in events}) >= COUNT,
                wait_seconds=240,
            )
            duplicates = {e["request_id"] for e in results if e["outcome"] == "duplicate"}
            # The first submit's reports are joined to the request whose resend was refused.
            joined = await read_events(
                kafka,
                topics.status,
                lambda events: duplicates <= {e["request_id"] for e in events},
                wait_seconds=120,
            )
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 60)
        delivered = Counter((s.destination_addr, s.short_message) for s in simulator.submits)
        refused = simulator.stats.duplicates_refused

    outcomes = Counter(event["outcome"] for event in {e["request_id"]: e for e in results}.values())
    print(f"killed at {killed_at} submits; {refused} resends refused as duplicates; {outcomes}")
    print(f"/readyz of every role 200 {ready_after:.1f} s after the restart")
    assert killed_at < COUNT, "the kill must come in the middle of the run"
    event_ids: dict[str, set[str]] = {}
    for event in results:
        event_ids.setdefault(event["request_id"], set()).add(event["event_id"])
    assert len(event_ids) == COUNT, tail(log)
    assert all(len(ids) == 1 for ids in event_ids.values()), "one result per request"
    twice = [key for key, n in delivered.items() if n > 1]
    assert twice == [], f"{len(twice)} messages reached the provider (and subscriber) twice"
    assert len(delivered) == COUNT
    assert set(outcomes) <= {"accepted", "duplicate"}, outcomes
    # Resends of submits in flight at the kill are refused as duplicates (their answer),
    # never retried: at most the window. A kill can also find nothing in flight (the sender
    # between two batches); tests/sender/test_sender_replay.py covers the refusal for sure.
    assert refused <= WINDOW, "more resends refused than the window had in flight"
    assert len(duplicates) == refused, "each refused resend is its request's answer"
    assert outcomes["duplicate"] == refused
    delivered_statuses = {
        e["request_id"] for e in joined if e["scope"] == "message" and e["status"] == "delivered"
    }
    assert duplicates <= delivered_statuses
    # The correlator's group takes its partitions back once the dead worker's session ends
    # (10 s), no longer faust's default minute.
    assert ready_after < 45
