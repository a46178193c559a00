"""Phone confirmation by call on the real broker: the poller as a process, the ingress and the
simulator's HTTP API with its webhook caller. A request gets a number and, once the
simulated subscriber calls, ``confirmed``; without a call ``expired`` (a short deadline by
configuration); a blacklisted phone ``rejected``; and a poller killed with confirmations
pending loses none of them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.settings.simulator_desk import CallDeskSettings
from gateway.simulator.http_api import HttpApiSimulator
from tests.e2e.account_support import PollerProcess, TopicWatcher, poller_env
from tests.http_api.httpapi_support import sim_config
from tests.ingress.ingress_support import SECRET, running_ingress

pytestmark = pytest.mark.kafka

BLACKLISTED = "79005550000"
DEADLINE, GRACE = 3.0, 1.0
Events = list[dict[str, Any]]


async def produce(kafka: LocalKafka, topic: str, *requests: dict[str, Any] | bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for request in requests:
            value = request if isinstance(request, bytes) else orjson.dumps(request)
            phone = b"" if isinstance(request, bytes) else str(request["phone"]).encode()
            await producer.send_and_wait(topic, value, key=phone or None)
    finally:
        await producer.stop()


def confirm(request_id: str, phone: str) -> dict[str, Any]:
    return {
        "schema": "smsc.call-confirm/1",
        "request_id": request_id,
        "phone": phone,
        "tags": {"flow": request_id},
    }


def of(request_id: str, kind: str) -> Callable[[Events], bool]:
    return lambda events: any(
        e.get("request_id") == request_id and e["kind"] == kind for e in events
    )


def by_request(events: Events) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.get("request_id"):
            found[event["request_id"]].append(event)
    return found


def settings_for(kafka: LocalKafka, topics: TopicSettings, base_url: str) -> dict[str, str]:
    return poller_env(
        kafka,
        topics,
        base_url,
        GATEWAY_POLLER_INCOMING_ENABLED="false",
        GATEWAY_CALL_CONFIRM_DEADLINE_SECONDS=str(DEADLINE),
        GATEWAY_CALL_CONFIRM_GRACE_SECONDS=str(GRACE),
        GATEWAY_CALL_CONFIRM_TICK_SECONDS="0.2",
        GATEWAY_CALL_CONFIRM_GROUP_ID=f"confirm-{topics.waitcall}",
    )


async def test_confirmed_expired_rejected_and_nothing_lost_across_a_sigkill(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        hook = f"http://127.0.0.1:{ingress.port}/smsc/callback?sha1={SECRET}"
        config = sim_config(webhook_url=hook, calls=CallDeskSettings(blacklist=(BLACKLISTED,)))
        async with (
            HttpApiSimulator(config) as sim,
            TopicWatcher(kafka, topics.waitcall, topics.dead_letter) as seen,
        ):
            poller = PollerProcess(
                settings_for(kafka, topics, sim.base_url), tmp_path / "poller.log"
            )
            await poller.start()
            try:
                # A request, its number, the subscriber's call, confirmed.
                await produce(kafka, topics.call_confirm, confirm("called", "79001230001"))
                await seen.until(of("called", "number_issued"))
                assert sim.place_call("79001230001") is not None
                await seen.until(of("called", "confirmed"))
                # No call: expired. A blacklisted phone: rejected. The same request twice and
                # an invalid one too.
                await produce(
                    kafka,
                    topics.call_confirm,
                    confirm("silent", "79001230002"),
                    confirm("blocked", f"+{BLACKLISTED}"),
                    confirm("silent", "79001230002"),
                    b'{"schema": "smsc.call-confirm/1", "request_id": "bad", "phone": "1"}',
                )
                await seen.until(of("silent", "expired"), wait_seconds=30)
                await seen.until(of("blocked", "rejected"))
                await seen.until(of("bad", "rejected"))
                # Two confirmations pending when the poller is killed: one subscriber calls
                # while it is down, the other never does; a third request waits on Kafka.
                await produce(
                    kafka,
                    topics.call_confirm,
                    confirm("before-kill-called", "79001230003"),
                    confirm("before-kill-silent", "79001230004"),
                )
                await seen.until(of("before-kill-called", "number_issued"))
                await seen.until(of("before-kill-silent", "number_issued"))
                await poller.kill()
                assert sim.place_call("79001230003") is not None
                await seen.until(lambda e: any(x["kind"] == "call" for x in e))
                await produce(kafka, topics.call_confirm, confirm("while-down", "79001230005"))
                await poller.start()
                await seen.until(of("before-kill-called", "confirmed"), wait_seconds=60)
                await seen.until(of("before-kill-silent", "expired"), wait_seconds=60)
                await seen.until(of("while-down", "number_issued"), wait_seconds=60)
                await seen.until(of("while-down", "expired"), wait_seconds=60)
            finally:
                await poller.stop()
            events = list(seen.events)

    waitcall = [e for e in events if e["schema"] == "smsc.waitcall/1"]
    # A repeat after the kill would carry the id it had; one id per request and kind.
    ids = {(e["request_id"], e["kind"], e["event_id"]) for e in waitcall if e["kind"] != "call"}
    assert len(ids) == len({(rid, kind) for rid, kind, _ in ids})
    unique = list({e["event_id"]: e for e in waitcall}.values())
    requests = by_request(unique)
    kinds = {rid: [e["kind"] for e in found] for rid, found in requests.items()}
    assert kinds == {
        "called": ["number_issued", "confirmed"],
        "silent": ["number_issued", "expired"],
        "blocked": ["rejected"],
        "bad": ["rejected"],
        "before-kill-called": ["number_issued", "confirmed"],
        "before-kill-silent": ["number_issued", "expired"],
        "while-down": ["number_issued", "expired"],
    }
    confirmed = requests["called"][1]
    issued = requests["called"][0]
    call = next(e for e in waitcall if e["kind"] == "call" and e["phone"] == "79001230001")
    assert (confirmed["tags"], confirmed["call_event_id"]) == ({"flow": "called"}, call["event_id"])
    assert confirmed["call_to"] == issued["call_to"]
    assert issued["call_to"] in issued["all_phones"]
    assert 0 <= confirmed["latency_seconds"] < DEADLINE
    blocked = requests["blocked"][0]
    assert (blocked["error_code"], blocked["reason"]["code"]) == (5, "blacklisted")
    assert blocked["phone"] == BLACKLISTED
    dead = [e for e in events if e["schema"] == "smsc.dead-letter/1"]
    assert [d["reason"]["code"] for d in dead] == ["invalid_phone"]
    assert len(sim.calls.issued) == 5, "the duplicate request and the blacklisted phone got none"
