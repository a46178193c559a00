"""``smsc-gateway demo``: the whole send path on this machine, start to finish.

Starts a local Kafka broker (fetched on first use) and the SMSC simulator, runs the sender
against them, produces a batch of send requests as a client service would (plus two
malformed ones), then follows the results and delivery reports on Kafka and prints a
summary. Exits 0 only when every request got its one result and every accepted message its
delivery report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.logsetup import configure_logging
from gateway.metrics import Metrics
from gateway.roles.sender import run_sender
from gateway.settings import Settings
from gateway.settings.simulator import DlrOutcome, SimulatorSettings
from gateway.simulator.smpp_server import SmppSimulator

SAMPLE_TEXTS = (
    "Your code is 4821",
    "Ваш код подтверждения: 4821",
    "Order #1042 shipped {tracking: ZX-9}",
    "Привет! Доставка завтра с 10 до 14 €",
)
DEMO_OUTCOMES = (
    DlrOutcome("DELIVRD", 0, 0.9),
    DlrOutcome("UNDELIV", 1, 0.05),
    DlrOutcome("EXPIRED", 245, 0.05),
)
TIMEOUT_SECONDS = 120.0
# Subscribers answering the campaign: (phone, text, coding, how a long one is cut). The long
# ones reach the gateway as parts out of order and leave it as one reassembled message.
REPLIES = (
    ("79005550001", "STOP", "gsm", "udh8"),
    ("79005550002", "Спасибо, заказ получен! " * 6, "ucs2", "udh8"),
    (
        "79005550003",
        "Thanks - please deliver after 6 pm, the concierge has the key. " * 4,
        "gsm",
        "sar",
    ),
)


def run_demo(count: int) -> int:
    """Run the demo with ``count`` valid requests; returns the process exit code."""
    configure_logging("WARNING")
    # Leader elections right after topic creation make aiokafka log transient errors that
    # it retries by itself; the demo's own checks report anything that really fails.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    say("starting local Kafka (first run downloads the broker from Maven Central) ...")
    with LocalKafka(num_partitions=3) as kafka:
        kafka.start()
        say(f"Kafka ready at {kafka.bootstrap_servers}")
        settings = Settings()
        kafka.create_topics(
            [
                getattr(settings.topics, f.replace("-", "_"))
                for f in (
                    "send",
                    "send_priority",
                    "send_results",
                    "dlr",
                    "incoming",
                    "incoming_parts",
                    "dead_letter",
                )
            ]
        )
        return asyncio.run(_run(kafka.bootstrap_servers, count))


def say(line: str) -> None:
    print(line, flush=True)


async def _run(bootstrap: str, count: int) -> int:
    sim_config = SimulatorSettings(
        dlr_delay_seconds=0.5, dlr_outcomes=DEMO_OUTCOMES, seed=7, dlr_cost=Decimal("1.95")
    )
    async with SmppSimulator(sim_config) as simulator:
        say(f"SMSC simulator listening on 127.0.0.1:{simulator.port}")
        settings = _settings(bootstrap, simulator.port, sim_config.accounts["gateway"])
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        for phone, text, coding, concat in REPLIES:
            simulator.send_incoming(
                "gateway", phone, "DemoShop", text, coding=coding, concat=concat, shuffle=True
            )
        try:
            code = await _exercise(settings, count, sender)
        finally:
            stop.set()
            await sender
        stats = simulator.stats
        say(
            f"  provider side: {stats.submits} submits accepted at the default 30 SMS/s limit, "
            f"{stats.throttled} throttling answers, {stats.duplicates_refused} duplicates refused"
        )
        return code


def _settings(bootstrap: str, smpp_port: int, password: str) -> Settings:
    base = Settings()
    return replace(
        base,
        kafka=replace(base.kafka, bootstrap_servers=bootstrap),
        smpp=replace(
            base.smpp,
            hosts=(f"127.0.0.1:{smpp_port}",),
            system_id="gateway",
            password=password,
            source_addr="DemoShop",
            window=64,
        ),
        http=replace(base.http, host="127.0.0.1", port=0),
        sender=replace(base.sender, group_id=f"demo-{uuid.uuid4().hex[:8]}"),
    )


async def _exercise(settings: Settings, count: int, sender: asyncio.Task[None]) -> int:
    run_id = uuid.uuid4().hex[:8]
    requests = [_request(run_id, i) for i in range(count)]
    consumer = AIOKafkaConsumer(
        settings.topics.send_results,
        settings.topics.dlr,
        settings.topics.incoming,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    started = time.perf_counter()
    try:
        await _produce(settings, requests)
        say(f"produced {count} send requests and 2 malformed ones to {settings.topics.send}")
        results, reports, replies = await _follow(consumer, settings, run_id, count, sender)
    finally:
        await consumer.stop()
    return _summary(results, reports, replies, count, time.perf_counter() - started)


def _request(run_id: str, index: int) -> dict[str, Any]:
    return {
        "schema": "smsc.send-request/1",
        "request_id": f"demo-{run_id}-{index:05d}",
        "recipients": [f"+7900{index:07d}"],
        "text": SAMPLE_TEXTS[index % len(SAMPLE_TEXTS)],
        "tags": {"campaign": "demo", "run": run_id},
    }


async def _produce(settings: Settings, requests: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for request in requests:
            phone = request["recipients"][0].encode()
            await producer.send(settings.topics.send, orjson.dumps(request), key=phone)
        run_id = requests[0]["tags"]["run"] if requests else "none"
        bad = {
            "schema": "smsc.send-request/1",
            "request_id": f"demo-{run_id}-bad",
            "recipients": ["not-a-phone"],
            "text": "x",
        }
        await producer.send(settings.topics.send, orjson.dumps(bad), key=b"bad")
        await producer.send(settings.topics.send, b"{not json", key=b"garbage")
        await producer.flush()
    finally:
        await producer.stop()


async def _follow(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    run_id: str,
    count: int,
    sender: asyncio.Task[None],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    results: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}
    replies: dict[str, dict[str, Any]] = {}
    repliers = {phone for phone, *_ in REPLIES}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    shown: set[str] = set()
    while time.monotonic() < deadline and not sender.done():
        batch = await consumer.getmany(timeout_ms=500)
        for message in (m for messages in batch.values() for m in messages):
            event = orjson.loads(message.value or b"{}")
            if message.topic == settings.topics.send_results:
                if event.get("request_id", "").startswith(f"demo-{run_id}"):
                    results[event["request_id"]] = event
            elif message.topic == settings.topics.incoming:
                if event.get("phone") in repliers:
                    replies[event["phone"]] = event
            else:
                reports[event["message_id"]] = event
            if message.topic not in shown:
                shown.add(message.topic)
                say(f"first event on {message.topic}:")
                say(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode())
        accepted = [r for r in results.values() if r["outcome"] == "accepted"]
        ids = {mid for r in accepted for rec in r["recipients"] for mid in rec["message_ids"]}
        done = len(results) >= count + 1 and ids and ids <= reports.keys()
        if done and replies.keys() == repliers:
            break
    if sender.done() and sender.exception() is not None:
        say(f"sender stopped with an error: {sender.exception()!r}")
    return results, reports, replies


def _summary(
    results: dict[str, dict[str, Any]],
    reports: dict[str, dict[str, Any]],
    replies: dict[str, dict[str, Any]],
    count: int,
    elapsed: float,
) -> int:
    outcomes = Counter(r["outcome"] for r in results.values())
    accepted_ids = {
        mid
        for r in results.values()
        if r["outcome"] == "accepted"
        for rec in r["recipients"]
        for mid in rec["message_ids"]
    }
    matched = {mid: reports[mid] for mid in accepted_ids if mid in reports}
    statuses = Counter(f"{e['status']} ({e['stat']}, err {e['err']})" for e in matched.values())
    say("")
    say(f"summary after {elapsed:.1f} s")
    say(f"  results: {len(results)} for {count + 1} requests with an id: {dict(outcomes)}")
    say(f"  delivery reports: {len(matched)} of {len(accepted_ids)} accepted messages")
    for status, n in sorted(statuses.items()):
        say(f"    {status}: {n}")
    intact = {phone for phone, text, *_ in REPLIES if replies.get(phone, {}).get("text") == text}
    say(f"  incoming SMS: {len(intact)} of {len(REPLIES)} replies intact on the incoming topic")
    for phone, event in sorted(replies.items()):
        parts = event.get("parts", 1)
        say(f"    from {phone}: {parts} part{'s' if parts > 1 else ''}, {event['text'][:40]!r}")
    ok = (
        outcomes.get("accepted", 0) == count
        and outcomes.get("rejected", 0) == 1
        and len(matched) == len(accepted_ids) == count
        and len(intact) == len(REPLIES)
    )
    say("demo OK" if ok else "demo FAILED: some results, reports or replies are missing")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        logging.captureWarnings(True)
        sys.exit(run_demo(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
