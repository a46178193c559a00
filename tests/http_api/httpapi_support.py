"""Shared by the HTTP API tests: fast settings, a scripted provider for httpx.MockTransport,
and the real simulator with a client and a transport wired to it."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from gateway.events.send_request import SendRequest
from gateway.http_api.client import SmscHttpClient
from gateway.http_api.metrics import HttpApiMetrics
from gateway.http_api.sending import HttpTransport
from gateway.metrics import Metrics
from gateway.settings.http_api import HttpApiSettings
from gateway.settings.simulator_http_api import HttpApiSimulatorSettings
from gateway.simulator.http_api import HttpApiSimulator

LOGIN = "gateway"
PASSWORD = "pw-secret-7x"
APIKEY = "key-0123456789abcdef"

# Timers short enough for tests; the rules stay those of the provider, on a 1 s "minute".
FAST: dict[str, Any] = {
    "retry_initial_seconds": 0.01,
    "retry_max_seconds": 0.05,
    "settle_seconds": 0.05,
    "duplicate_backoff_seconds": 0.3,
    "duplicate_backoff_max_seconds": 1.0,
    "ip_block_seconds": 0.5,
    "ip_block_after_auth_seconds": 1.0,
    "auth_error_pause_seconds": 0.3,
    "funds_retry_seconds": 0.2,
    "funds_park_max_seconds": 2.0,
    "give_up_after_seconds": 3.0,
    "limit_window_seconds": 1.0,
    "read_timeout_seconds": 2.0,
}


def fast_settings(base_urls: tuple[str, ...], **overrides: Any) -> HttpApiSettings:
    values = {"base_urls": base_urls, "login": LOGIN, "password": PASSWORD, **FAST}
    return HttpApiSettings(**(values | overrides))


def send_request(
    request_id: str = "req-1", *phones: str, text: str = "Hello", **kw: Any
) -> SendRequest:
    return SendRequest(request_id, phones or ("79001234567",), text, **kw)


# -- a scripted provider for httpx.MockTransport ---------------------------------------------

Answer = Callable[["Call"], httpx.Response]


@dataclass(frozen=True)
class Call:
    """One request the fake provider received."""

    host: str
    script: str
    method: str
    params: dict[str, str]


class FakeProvider:
    """Answers each script from a queue of answers (the last one repeats), records every call,
    and counts the sends it accepted per ``id``, so a test sees a message sent twice."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.accepted: Counter[str] = Counter()
        self._answers: dict[str, deque[Answer]] = {}

    def script(self, name: str, *answers: Answer) -> None:
        self._answers[name] = deque(answers)

    def calls_to(self, script: str) -> list[Call]:
        return [c for c in self.calls if c.script == script]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        script = request.url.path.rsplit("/", 1)[-1].removesuffix(".php")
        text = request.content.decode() if request.method == "POST" else request.url.query.decode()
        call = Call(request.url.host, script, request.method, dict(parse_qsl(text)))
        self.calls.append(call)
        queue = self._answers[script]
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        return answer(call)


def json_answer(document: object) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(document))


def accept(provider: FakeProvider) -> Answer:
    """send.php takes the message: its id comes back, as the provider does with ours."""

    def answer(call: Call) -> httpx.Response:
        provider.accepted[call.params["id"]] += 1
        return json_answer(
            {"id": int(call.params["id"]), "cnt": 1, "cost": "1.95", "balance": "10.00"}
        )

    return answer


def accept_then_time_out(provider: FakeProvider) -> Answer:
    """The provider takes the message, and its answer is lost."""

    def answer(call: Call) -> httpx.Response:
        provider.accepted[call.params["id"]] += 1
        raise httpx.ReadTimeout("timed out")

    return answer


def error(code: int, *, with_id: bool = False) -> Answer:
    def answer(call: Call) -> httpx.Response:
        document: dict[str, Any] = {"error": f"error {code}", "error_code": code}
        if with_id:
            document["id"] = int(call.params.get("id", "1"))
        return json_answer(document)

    return answer


def fail(exc: Exception) -> Answer:
    def answer(call: Call) -> httpx.Response:
        raise exc

    return answer


def status_of(provider: FakeProvider, *, found: int = 1) -> Answer:
    """status.php that knows exactly the messages ``provider`` accepted."""

    def answer(call: Call) -> httpx.Response:
        known = provider.accepted[call.params["id"]] > 0
        return json_answer(
            {"status": found if known else -3, "last_timestamp": 1700000000, "err": 0}
        )

    return answer


def mock_client(
    provider: FakeProvider, *, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any
) -> tuple[SmscHttpClient, HttpApiMetrics, Metrics]:
    """A client whose network is ``provider`` (or ``transport``), with fast settings."""
    metrics = Metrics()
    api_metrics = HttpApiMetrics(metrics)
    hosts = overrides.pop("base_urls", ("https://primary.test", "https://backup.test"))
    settings = fast_settings(hosts, **overrides)
    client = SmscHttpClient(settings, api_metrics, transport=transport or provider.transport())
    return client, api_metrics, metrics


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- the real simulator --------------------------------------------------------------------


def sim_config(**overrides: Any) -> HttpApiSimulatorSettings:
    """The simulator with the provider's rules on a 1 s window and fast statuses."""
    base = HttpApiSimulatorSettings(
        accounts={LOGIN: PASSWORD},
        apikeys={APIKEY: LOGIN},
        status_delay_seconds=0.2,
        window_seconds=1.0,
        auth_failure_window_seconds=5.0,
        block_seconds=2.0,
    )
    return dataclasses.replace(base, **overrides)


@dataclass
class Wired:
    sim: HttpApiSimulator
    client: SmscHttpClient
    transport: HttpTransport
    metrics: Metrics
    api_metrics: HttpApiMetrics


@asynccontextmanager
async def wired(
    sim_overrides: dict[str, Any] | None = None, **settings_overrides: Any
) -> AsyncIterator[Wired]:
    """The simulator running, and a client and transport talking to it over real HTTP."""
    async with HttpApiSimulator(sim_config(**(sim_overrides or {}))) as sim:
        metrics = Metrics()
        api_metrics = HttpApiMetrics(metrics)
        settings = fast_settings((sim.base_url,), **settings_overrides)
        async with SmscHttpClient(settings, api_metrics) as client:
            transport = HttpTransport(client, settings, api_metrics)
            yield Wired(sim, client, transport, metrics, api_metrics)


# -- Kafka ---------------------------------------------------------------------------------


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    done: Callable[[list[dict[str, Any]]], bool],
    wait_seconds: float = 60.0,
) -> list[dict[str, Any]]:
    """Every event on ``topic`` from the start, read until ``done(events)`` or the wait ends."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while not done(events) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            events += [orjson.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()
    return events
