"""One sender, two transports: a request over the HTTP API and one over SMPP, side by side.

Both results must have the same shape (the same schema and fields), differing only in the
transport and the provider's ids.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import Decimal

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles.sender import run_sender
from gateway.settings import Settings, TopicSettings
from gateway.settings.simulator_http_api import HttpApiSimulatorSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.simulator.http_api import HttpApiSimulator
from tests.e2e.support import results_by_request, sender_settings

pytestmark = pytest.mark.kafka


def settings_for(
    kafka: LocalKafka, topics: TopicSettings, smpp_port: int, http_url: str, run: str
) -> Settings:
    base = sender_settings(kafka, topics, smpp_port, f"transports-{run}", "pw")
    http_api = dataclasses.replace(
        base.http_api, base_urls=(http_url,), login="gateway", password="pw"
    )
    return dataclasses.replace(base, http_api=http_api)


async def test_http_and_smpp_sends_give_results_of_the_same_shape(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    run = uuid.uuid4().hex[:6]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    for transport, phone in (("http", "+79080000001"), ("smpp", "+79080000002")):
        request_id = f"{run}-{transport}"
        item = {
            "schema": "smsc.send-request/1",
            "request_id": request_id,
            "recipients": [phone],
            "text": f"Hello over {transport}",
            "transport": transport,
            "tags": {"via": transport},
        }
        await producer.send(topics.send, orjson.dumps(item), key=request_id.encode())
    await producer.stop()
    smpp_config = SimulatorSettings(accounts={"gateway": "pw"}, rate_limit_per_second=None)
    http_config = HttpApiSimulatorSettings(accounts={"gateway": "pw"})
    async with SmppSimulator(smpp_config) as smpp, HttpApiSimulator(http_config) as http:
        settings = settings_for(kafka, topics, smpp.port, http.base_url, run)
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        found = await results_by_request(kafka, topics.send_results, 2)
        stop.set()
        await asyncio.wait_for(sender, 60)

    over_http, over_smpp = found[f"{run}-http"], found[f"{run}-smpp"]
    assert over_http["outcome"] == over_smpp["outcome"] == "accepted"
    assert (over_http["transport"], over_smpp["transport"]) == ("http", "smpp")
    assert over_http.keys() == over_smpp.keys()
    assert over_http["recipients"][0].keys() == over_smpp["recipients"][0].keys()
    assert over_http["recipients"][0]["message_ids"][0].isdigit()
    assert over_http["tags"] == {"via": "http"}
    assert smpp.stats.submits == 1, "the HTTP request did not go over SMPP"


async def test_2000_http_sends_from_50_concurrent_producers_through_the_sender(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    run = uuid.uuid4().hex[:6]

    async def producer(worker: int) -> None:
        client = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await client.start()
        try:
            for i in range(worker, 2000, 50):
                request_id = f"{run}-{i}"
                item = {
                    "schema": "smsc.send-request/1",
                    "request_id": request_id,
                    "recipients": [f"+7909{i:07d}"],
                    "text": f"Code {i:04d}",
                    "transport": "http",
                }
                await client.send(topics.send, orjson.dumps(item), key=request_id.encode())
        finally:
            await client.stop()

    await asyncio.gather(*(producer(worker) for worker in range(50)))
    smpp_config = SimulatorSettings(accounts={"gateway": "pw"}, rate_limit_per_second=None)
    # Funded for all 2,000 (the default balance would end in error 3, "no money"), and
    # holding each request a little so the gateway's concurrency really builds up.
    http_config = HttpApiSimulatorSettings(
        accounts={"gateway": "pw"}, balance=Decimal(1_000_000), processing_seconds=0.01
    )
    async with SmppSimulator(smpp_config) as smpp, HttpApiSimulator(http_config) as http:
        settings = settings_for(kafka, topics, smpp.port, http.base_url, run)
        stop = asyncio.Event()
        sender = asyncio.create_task(run_sender(settings, Metrics(), stop))
        found = await results_by_request(kafka, topics.send_results, 2000, wait_seconds=120)
        stop.set()
        await asyncio.wait_for(sender, 60)
        errors = http.stats.errors

    assert len(found) == 2000
    assert {event["outcome"] for event in found.values()} == {"accepted"}
    assert {event["transport"] for event in found.values()} == {"http"}
    assert not any(code == 9 for _, code in errors), errors
    assert http.stats.messages == 2000, "every request sent exactly once"
    assert smpp.stats.submits == 0
