"""Opt-out end to end on the real broker, the roles as processes.

Subscribers send SMS through the SMPP simulator; the receiver publishes them on
``smsc.incoming.v1``; the poller, with opt-out keywords set, puts the phones of the keyword SMS
on the HTTP API simulator's blacklist (mass mailings) and publishes ``smsc.opt-out/1`` for
each. A second poller in a new consumer group then reads every incoming SMS again: the opt-outs
already on Kafka keep it from calling the provider again or publishing anything new.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.events.envelope import stable_event_id
from gateway.events.opt_out import opt_out_event_id
from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.simulator.http_api import HttpApiSimulator
from tests.e2e.receiver_support import receiver_env, start_receiver
from tests.e2e.support import read_events
from tests.e2e.test_send_path import free_port, sender_env
from tests.http_api.httpapi_support import LOGIN, PASSWORD, sim_config

pytestmark = pytest.mark.kafka

SMPP_PASSWORD = "opt-pw"
# Phone -> text: the keyword SMS (any case, punctuation around) and others left alone.
KEYWORD_SMS = {
    "79050000001": "STOP",
    "79050000002": "stop!",
    "79050000003": "СТОП",
    "79050000004": " Стоп. ",
}
OTHER_SMS = {
    "79050000011": "Please stop sending me this",
    "79050000012": "Hello",
    "79050000013": "stopped",
}


def poller_env(
    kafka: LocalKafka, topics: TopicSettings, http: HttpApiSimulator, group: str
) -> dict[str, str]:
    env = sender_env(kafka, topics, 1, free_port(), "unused")
    return env | {
        "GATEWAY_HTTP_API_BASE_URLS": http.base_url,
        "GATEWAY_HTTP_API_LOGIN": LOGIN,
        "GATEWAY_HTTP_API_PASSWORD": PASSWORD,
        "GATEWAY_HTTP_API_LIMIT_WINDOW_SECONDS": "1",
        "GATEWAY_OPTOUT_KEYWORDS": "STOP,СТОП",
        "GATEWAY_OPTOUT_GROUP_ID": group,
        "GATEWAY_OPTOUT_RETRY_INITIAL_SECONDS": "0.2",
        "GATEWAY_LOG_LEVEL": "INFO",
    }


async def start_poller(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "poller", env=env, stdout=out, stderr=out
        )


async def stop_process(process: asyncio.subprocess.Process, log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 60)
    assert code == 0, log_tail(log)


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def group_caught_up(kafka: LocalKafka, topic: str, group: str, wait_seconds: float) -> bool:
    """Whether ``group`` committed every partition of ``topic`` to its end in time."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        ends = await consumer.end_offsets(partitions)
        for _ in range(int(wait_seconds / 0.5)):
            committed = {tp: await consumer.committed(tp) or 0 for tp in partitions}
            if committed == ends:
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await consumer.stop()


async def test_keyword_sms_put_their_phones_on_the_blacklist_once(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    smpp_config = SimulatorSettings(accounts={"gateway": SMPP_PASSWORD}, incoming_retry_seconds=1.0)
    async with SmppSimulator(smpp_config) as smpp, HttpApiSimulator(sim_config()) as http:
        for phone, text in (KEYWORD_SMS | OTHER_SMS).items():
            smpp.send_incoming("gateway", phone, "4567", text)
        receiver_log = tmp_path / "receiver.log"
        receiver = await start_receiver(
            receiver_env(kafka, topics, smpp.port, SMPP_PASSWORD), receiver_log
        )
        first_log = tmp_path / "poller-1.log"
        first = await start_poller(poller_env(kafka, topics, http, f"optout-{run}"), first_log)
        try:
            events = await read_events(
                kafka, topics.opt_out, lambda found: len(found) >= len(KEYWORD_SMS), 120
            )
            incoming = await read_events(
                kafka, topics.incoming, lambda found: len(found) >= len(KEYWORD_SMS | OTHER_SMS)
            )
            assert await group_caught_up(kafka, topics.incoming, f"optout-{run}", 60)
        finally:
            await stop_process(first, first_log)
        check_opt_outs(events, incoming, http)
        calls = http.stats.requests["phones"]
        assert calls == len(KEYWORD_SMS)

        # Every incoming SMS once more, in a new group: the replays are recognised.
        second_log = tmp_path / "poller-2.log"
        group = f"optout-{run}-again"
        env = poller_env(kafka, topics, http, group)
        second = await start_poller(env, second_log)
        try:
            assert await group_caught_up(kafka, topics.incoming, group, 90), log_tail(second_log)
            metrics = await scrape(int(env["GATEWAY_HTTP_PORT"]))
        finally:
            await stop_process(second, second_log)
            await stop_process(receiver, receiver_log)
        assert http.stats.requests["phones"] == calls, "a replayed SMS reached the provider"
        again = await read_events(kafka, topics.opt_out, lambda found: False, 3)
        assert len(again) == len(KEYWORD_SMS), "a replayed SMS was published again"
        assert f'smsc_optout_total{{outcome="replayed"}} {len(KEYWORD_SMS)}.0' in metrics


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


def check_opt_outs(
    events: list[dict[str, Any]], incoming: list[dict[str, Any]], http: HttpApiSimulator
) -> None:
    """One valid opt-out per keyword SMS (read_events validated the schema), tied to it."""
    by_phone = {e["phone"]: e for e in events}
    assert sorted(by_phone) == sorted(KEYWORD_SMS)
    assert len(events) == len(KEYWORD_SMS)
    incoming_ids = {e["phone"]: e["event_id"] for e in incoming}
    blacklist = http.phones.books[LOGIN].blacklist
    assert sorted(blacklist) == sorted(KEYWORD_SMS)
    for phone, event in by_phone.items():
        assert event["keyword"] == ("STOP" if KEYWORD_SMS[phone].isascii() else "СТОП")
        assert event["outcome"] == "blacklisted"
        assert event["source"] == "smpp"
        assert event["to"] == "4567"
        assert event["incoming_event_id"] == incoming_ids[phone]
        assert event["event_id"] == opt_out_event_id(incoming_ids[phone])
        assert event["blacklist"] == {"type": 1, "blocks": "mass", "id": blacklist[phone].entry_id}
        assert blacklist[phone].type == 1
    assert (
        stable_event_id("smsc.opt-out/1", incoming_ids["79050000001"])
        == by_phone["79050000001"]["event_id"]
    )
