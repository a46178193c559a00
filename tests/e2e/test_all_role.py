"""``smsc-gateway all`` end to end: sender, correlator and ingress in one process.

Send requests go out over SMPP to the simulator and come back as results; the simulator's
delivery reports are joined by the correlator into status events; a signed webhook callback
is stored by the ingress; one ``/readyz`` speaks for every role; SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.simulator.webhook_request import HandlerUrl, build_request, status_notice
from tests.e2e.support import read_events, results_by_request
from tests.e2e.test_send_path import PASSWORD, free_port, sender_env
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

COUNT = 20
SECRET = "all-role-secret"


def all_env(
    kafka: LocalKafka, topics: TopicSettings, smpp_port: int, data_dir: Path
) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    env = sender_env(kafka, topics, smpp_port, free_port(), f"all-{run}")
    return env | {
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_CORRELATOR_APP_ID": f"correlator-all-{run}",
        "GATEWAY_CORRELATOR_ROUTE_TOPIC": f"correlator-route-all-{run}",
        "GATEWAY_CORRELATOR_PARTITIONS": "3",
        "GATEWAY_CORRELATOR_REPLICATION_FACTOR": "1",
        "GATEWAY_CORRELATOR_DATA_DIR": str(data_dir),
        "GATEWAY_CORRELATOR_TICK_INTERVAL_SECONDS": "0.5",
        "GATEWAY_CORRELATOR_COMMIT_INTERVAL_SECONDS": "0.5",
        "GATEWAY_INGRESS_HOST": "127.0.0.1",
        "GATEWAY_INGRESS_PORT": str(free_port()),
        "GATEWAY_INGRESS_SECRET": SECRET,
    }


async def ready(url: str, seconds: float = 90.0) -> str:
    """The body of the first 200 from ``url``/readyz."""
    async with httpx.AsyncClient() as client:
        for _ in range(int(seconds / 0.25)):
            try:
                response = await client.get(f"{url}/readyz")
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                return response.text
            await asyncio.sleep(0.25)
    raise AssertionError(f"{url}/readyz never answered 200")


async def produce_requests(kafka: LocalKafka, topic: str, run: str) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    ids = [f"{run}-{i}" for i in range(COUNT)]
    try:
        for i, request_id in enumerate(ids):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": request_id,
                "recipients": [f"+7905{i:07d}"],
                "text": "all roles, one process",
                "tags": {"n": str(i)},
            }
            await producer.send(topic, orjson.dumps(request), key=request_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return ids


async def test_all_runs_sender_correlator_and_ingress_and_stops_on_sigterm(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    config = SimulatorSettings(accounts={"gateway": PASSWORD})
    async with SmppSimulator(config) as simulator:
        env = all_env(kafka, topics, simulator.port, tmp_path / "correlator")
        log = tmp_path / "all.log"
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "all", env=env, stdout=out, stderr=out
            )
        try:
            detail = await ready(f"http://127.0.0.1:{env['GATEWAY_HTTP_PORT']}")
            assert "sender: 1 of 1 bound" in detail
            assert "correlator:" in detail
            ingress = f"http://127.0.0.1:{env['GATEWAY_INGRESS_PORT']}"
            await ready(ingress)

            ids = await produce_requests(kafka, topics.send, tmp_path.name)
            results = await results_by_request(kafka, topics.send_results, COUNT)
            assert sorted(results) == sorted(ids)
            assert {r["outcome"] for r in results.values()} == {"accepted"}

            # The correlator joins each message's delivery report back to its request.
            statuses = await read_events(
                kafka,
                [topics.status],
                lambda events: {e["request_id"] for e in events} >= set(ids),
                wait_seconds=90,
            )
            for event in statuses:
                validate_event(event)
            assert {e["request_id"] for e in statuses} == set(ids)
            assert {e["tags"]["n"] for e in statuses} == {str(i) for i in range(COUNT)}

            handler = HandlerUrl.parse(f"{ingress}/smsc/callback?sha1={SECRET}")
            callback = build_request(handler, status_notice("990001", "79990000001", 1))
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    callback.url,
                    content=callback.body,
                    headers={"Content-Type": callback.content_type},
                )
            assert answer.status_code == 200
            webhook = await read_events(
                kafka,
                [topics.dlr],
                lambda events: any(e["source"] == "webhook" for e in events),
            )
            (stored,) = [e for e in webhook if e["source"] == "webhook"]
            validate_event(stored)
            assert (stored["message_id"], stored["phone"]) == ("990001", "79990000001")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
        assert code == 0, log.read_text()[-4000:]
        assert simulator.bound("gateway") == 0
