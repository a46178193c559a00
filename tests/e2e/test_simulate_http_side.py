"""The HTTP side of the local stack on the real broker, as compose wires it: ``smsc-gateway
simulate`` as the provider, calling the ingress, and the poller as a process against its HTTP
API. The subscribers the simulator makes up write in, and the poller publishes what it polls
with the event_ids the ingress gives the same messages; a confirmation request gets a number
and, once the simulated subscriber calls, ``confirmed``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from tests.e2e.account_support import PollerProcess, TopicWatcher, poller_env
from tests.e2e.test_call_confirm import confirm, of, produce
from tests.ingress.ingress_support import SECRET, running_ingress
from tests.simulator.simulate_support import simulate_process

pytestmark = pytest.mark.kafka

LOGIN, PASSWORD = "gateway", "pw-7x"  # an SMPP password has at most 8 characters
POLLED = 20


def ids_by_source(events: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """source -> provider incoming id -> event ids."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        if event.get("schema") == "smsc.incoming/1":
            found[event["source"]][event["incoming_id"]].add(event["event_id"])
    return found


def polled_enough(events: list[dict[str, Any]]) -> bool:
    return len(ids_by_source(events)["poll"]) >= POLLED


async def test_the_poller_and_the_ingress_work_against_simulate(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    async with running_ingress(kafka.bootstrap_servers, topics) as ingress:
        hook = f"http://127.0.0.1:{ingress.port}/smsc/callback?sha1={SECRET}"
        provider = {
            "GATEWAY_SIMULATOR_ACCOUNTS": f"{LOGIN}:{PASSWORD}",
            "GATEWAY_SIMULATOR_HTTP_API_WEBHOOK_URL": hook,
            "GATEWAY_SIMULATOR_HTTP_API_CALL_AFTER_SECONDS": "0.5",
            "GATEWAY_SIMULATOR_HTTP_API_INCOMING_RATE_PER_SECOND": "10",
        }
        async with (
            simulate_process(provider) as (_, base_url),
            TopicWatcher(kafka, topics.incoming, topics.waitcall) as seen,
        ):
            env = poller_env(
                kafka,
                topics,
                base_url,
                GATEWAY_HTTP_API_PASSWORD=PASSWORD,
                GATEWAY_HTTP_API_LIMIT_WINDOW_SECONDS="60",  # the simulator's own minute
                GATEWAY_POLLER_INCOMING_INTERVAL_SECONDS="0.5",
                GATEWAY_CALL_CONFIRM_TICK_SECONDS="0.2",
                GATEWAY_CALL_CONFIRM_GROUP_ID=f"confirm-{topics.waitcall}",
            )
            poller = PollerProcess(env, tmp_path / "poller.log")
            await poller.start()
            try:
                await produce(kafka, topics.call_confirm, confirm("local", "79001230001"))
                await seen.until(of("local", "confirmed"), wait_seconds=60)
                await seen.until(polled_enough, wait_seconds=60)
            finally:
                await poller.stop()
            events = list(seen.events)

    sources = ids_by_source(events)
    both = set(sources["poll"]) & set(sources["webhook"])
    assert len(both) >= POLLED // 2, sources.keys()
    for incoming_id in both:
        assert sources["poll"][incoming_id] == sources["webhook"][incoming_id]
    kinds = [e["kind"] for e in events if e.get("request_id") == "local"]
    assert kinds == ["number_issued", "confirmed"]
