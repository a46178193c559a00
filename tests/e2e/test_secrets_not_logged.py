"""No setting puts a secret in a log line or in /metrics.

Every documented secret setting (docs/configuration.md marks them ``(secret)``: the SMPP and
HTTP API passwords, the API key, the webhook's signing secret and path token, the Kafka SASL
password, the simulator's accounts) is given a distinctive value; the roles run as processes
at DEBUG, with GET requests to the provider's API allowed (``GATEWAY_HTTP_API_GET_MAX_URL_CHARS``:
the credentials then travel in the address), and do real work: sends over SMPP and the HTTP
API, balance and status queries, binds, signed and refused webhook callbacks. Then every log
and every role's /metrics is searched for each secret, as is and URL-encoded.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.settings.simulator_http_api import HttpApiSimulatorSettings
from gateway.simulator.http_api import HttpApiSimulator
from gateway.simulator.webhook_request import HandlerUrl, build_request, status_notice
from tests.e2e.support import read_events
from tests.e2e.test_all_role import all_env, ready
from tests.e2e.test_send_path import free_port

pytestmark = pytest.mark.kafka

SECRETS = {
    "GATEWAY_SMPP_PASSWORD": "Sm9pQx4w",  # SMPP passwords are at most 8 characters
    "GATEWAY_HTTP_API_PASSWORD": "api-pass-Zq81/+&=",
    "GATEWAY_HTTP_API_APIKEY": "apikey-Kx93mPq77",
    "GATEWAY_INGRESS_SECRET": "hook-secret-Vb4",
    "GATEWAY_INGRESS_PATH_TOKEN": "path-token-Jd02",
    "GATEWAY_KAFKA_SASL_PASSWORD": "sasl-pass-Qe55",
    # Nothing is sent through the simulated HTTP API here, so this handler is never called.
    "GATEWAY_SIMULATOR_HTTP_API_WEBHOOK_URL": "http://127.0.0.1:9/hook?sha1=sim-hook-Wm62",
}
RECEIVER_PASSWORD = "Rc7vYt2e"
LOGIN = "gw-login"
COUNT = 6


def documented_secret_settings() -> set[str]:
    """The settings docs/configuration.md marks as secrets."""
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    return set(re.findall(r"`(GATEWAY_[A-Z0-9_]+)` \| [^|]+\| `\(secret\)`", text))


def test_every_documented_secret_setting_is_covered() -> None:
    covered = set(SECRETS) | {"GATEWAY_SIMULATOR_ACCOUNTS"}
    assert documented_secret_settings() <= covered


def secrets_to_find() -> list[str]:
    values = [*SECRETS.values(), RECEIVER_PASSWORD]
    return values + [quote(v, safe="") for v in values]


def role_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    return base | {"GATEWAY_HTTP_PORT": str(free_port()), **extra}


async def start(role: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", role, env=env, stdout=out, stderr=out
        )


async def produce(kafka: LocalKafka, topic: str, run: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for i in range(COUNT):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7908{i:07d}"],
                "text": f"secrets test {i}",
                "transport": "http" if i % 2 else "smpp",
            }
            await producer.send(topic, orjson.dumps(request), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def callbacks(ingress: str) -> list[int]:
    """A signed status callback through the path token, and one with a wrong token."""
    token, secret = SECRETS["GATEWAY_INGRESS_PATH_TOKEN"], SECRETS["GATEWAY_INGRESS_SECRET"]
    answers = []
    async with httpx.AsyncClient() as client:
        for path in (token, "wrong-token"):
            handler = HandlerUrl.parse(f"{ingress}/smsc/callback/{path}?sha1={secret}")
            request = build_request(handler, status_notice("880001", "79990000002", 1))
            response = await client.post(
                request.url, content=request.body, headers={"Content-Type": request.content_type}
            )
            answers.append(response.status_code)
    return answers


async def scrape(urls: list[str]) -> str:
    async with httpx.AsyncClient() as client:
        return "\n".join([(await client.get(f"{url}/metrics")).text for url in urls])


async def test_no_secret_in_any_log_or_metric(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    smpp_port = free_port()
    api_config = HttpApiSimulatorSettings(
        accounts={LOGIN: SECRETS["GATEWAY_HTTP_API_PASSWORD"]},
        apikeys={SECRETS["GATEWAY_HTTP_API_APIKEY"]: LOGIN},
        status_delay_seconds=0.2,
    )
    async with HttpApiSimulator(api_config) as api:
        base = all_env(kafka, topics, smpp_port, tmp_path / "correlator") | SECRETS
        base |= {
            "GATEWAY_LOG_LEVEL": "DEBUG",
            "GATEWAY_HTTP_API_BASE_URLS": api.base_url,
            "GATEWAY_HTTP_API_LOGIN": LOGIN,
            "GATEWAY_HTTP_API_GET_MAX_URL_CHARS": "4000",
            "GATEWAY_POLLER_INTERVAL_SECONDS": "1",
            "GATEWAY_POLLER_MIN_AGE_SECONDS": "0.5",
            "GATEWAY_SIMULATOR_PORT": str(smpp_port),
            "GATEWAY_SIMULATOR_ACCOUNTS": (
                f"gateway:{SECRETS['GATEWAY_SMPP_PASSWORD']},recv:{RECEIVER_PASSWORD}"
            ),
        }
        base.pop("GATEWAY_HTTP_API_APIKEY")  # `all` uses login and password
        envs = {
            "simulate": role_env(base),
            "all": role_env(base),
            "poller": role_env(base, GATEWAY_HTTP_API_APIKEY=SECRETS["GATEWAY_HTTP_API_APIKEY"]),
            "receiver": role_env(
                base,
                GATEWAY_SMPP_SYSTEM_ID="recv",
                GATEWAY_SMPP_PASSWORD=RECEIVER_PASSWORD,
                GATEWAY_RECEIVER_PROBE_PORT=str(free_port()),
            ),
        }
        envs["poller"]["GATEWAY_HTTP_API_LOGIN"] = ""
        logs = {role: tmp_path / f"{role}.log" for role in envs}
        processes = {"simulate": await start("simulate", envs["simulate"], logs["simulate"])}
        await asyncio.sleep(1.0)  # the simulator listens before the binds dial it
        for role in ("all", "poller", "receiver"):
            processes[role] = await start(role, envs[role], logs[role])
        probes = [
            f"http://127.0.0.1:{envs['all']['GATEWAY_HTTP_PORT']}",
            f"http://127.0.0.1:{envs['poller']['GATEWAY_HTTP_PORT']}",
            f"http://127.0.0.1:{envs['receiver']['GATEWAY_RECEIVER_PROBE_PORT']}",
        ]
        try:
            for url in probes:
                await ready(url, seconds=120)
            await produce(kafka, topics.send, uuid.uuid4().hex[:6])
            results = await read_events(
                kafka, topics.send_results, lambda events: len(events) >= COUNT, wait_seconds=120
            )
            assert {e["transport"] for e in results} == {"smpp", "http"}
            ingress = f"http://127.0.0.1:{base['GATEWAY_INGRESS_PORT']}"
            assert await callbacks(ingress) == [200, 403]
            await asyncio.sleep(3)  # balance and status queries of the poller
            metrics = await scrape([*probes, ingress])
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                await asyncio.wait_for(process.wait(), 60)

    assert api.stats.requests["balance"] > 0, "the poller asked for the balance"
    written = {role: log.read_text(errors="replace") for role, log in logs.items()}
    written["metrics"] = metrics
    assert "smsc_http_balance" in metrics
    found = {
        (where, secret)
        for where, text in written.items()
        for secret in secrets_to_find()
        if secret in text
    }
    assert found == set(), found
