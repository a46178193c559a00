"""Two ingress replicas taking the provider's callbacks while a broker is killed and restarted.

The simulator's webhook caller plays the provider, one caller per replica (a load balancer
sending each callback to one of them), repeating every callback not answered 200 on a
shortened schedule. The broker leading partition 0 of the delivery report topic is
SIGKILLed: until the cluster fences it and elects new leaders, writes to its partitions
cannot be acknowledged, and the replicas answer 503 for those callbacks; after that, and
while the broker restarts and catches up, every answer is 200. In the end each callback's
event is on Kafka, counted by ``event_id`` (a publish abandoned at its timeout may still
land, so a callback may be stored twice with one id), and nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.localkafka import LocalKafkaCluster
from gateway.settings import TopicSettings
from gateway.simulator.webhook import WebhookCaller
from gateway.simulator.webhook_request import HandlerUrl
from tests.cluster.rolekit import Figures, Replica, Seen, follow, new_leader
from tests.e2e.test_send_path import free_port, vars_of
from tests.eventcheck import validate_event
from tests.ingress.ingress_support import SECRET
from tests.ingress.test_ingress_kafka_outage import expected_event_id, notice, readiness

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

COUNT = 1500
SPACING_SECONDS = 0.02
PUBLISH_TIMEOUT = "2.0"


def ingress_replica(
    cluster: LocalKafkaCluster, topics: TopicSettings, name: str, log: Path
) -> Replica:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {f"GATEWAY_TOPICS_{k.upper()}": v for k, v in vars_of(topics).items()}
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "GATEWAY_INGRESS_HOST": "127.0.0.1",
        "GATEWAY_INGRESS_PORT": str(free_port()),
        "GATEWAY_INGRESS_SECRET": SECRET,
        "GATEWAY_INGRESS_PUBLISH_TIMEOUT_SECONDS": PUBLISH_TIMEOUT,
        "GATEWAY_INGRESS_READINESS_INTERVAL_SECONDS": "0.5",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    return Replica(name, env, log, role="ingress")


async def until_ready(replica: Replica) -> None:
    port = int(replica.env["GATEWAY_INGRESS_PORT"])
    for _ in range(600):
        assert replica.alive(), replica.tail()
        try:
            if await readiness(port) == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{replica.name} not ready in 60 s\n{replica.tail()}")


def answers(callers: list[WebhookCaller]) -> Counter[int | None]:
    return sum((c.stats.answers for c in callers), Counter())


async def test_two_ingress_replicas_while_a_broker_restarts(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics = cluster_topics
    replicas = [
        ingress_replica(cluster, topics, n, tmp_path / n) for n in ("ingress-a", "ingress-b")
    ]
    seen, done = Seen(), asyncio.Event()
    event_topics = [topics.dlr, topics.incoming, topics.waitcall, topics.dead_letter]
    reader = asyncio.create_task(follow(cluster.bootstrap_servers, event_topics, seen, done))
    notices = [notice(i) for i in range(COUNT)]
    handlers = []
    for replica in replicas:
        await replica.start()
        port = replica.env["GATEWAY_INGRESS_PORT"]
        handlers.append(HandlerUrl.parse(f"http://127.0.0.1:{port}/smsc/callback?sha1={SECRET}"))
    try:
        for replica in replicas:
            await until_ready(replica)
        async with (
            WebhookCaller(handlers[0], retry_interval_seconds=1.0) as caller_a,
            WebhookCaller(handlers[1], retry_interval_seconds=1.0) as caller_b,
        ):
            callers = [caller_a, caller_b]
            leader = await asyncio.to_thread(cluster.leader_of, topics.dlr, 0)
            moments: dict[str, float] = {}
            snapshots: dict[str, int] = {}
            for i, item in enumerate(notices):
                if i == COUNT // 5:
                    snapshots["before the kill"] = answers(callers)[503]
                    cluster.kill_broker(leader)
                    moments["kill"] = time.monotonic()
                    failover = asyncio.create_task(
                        asyncio.to_thread(new_leader, cluster, topics.dlr, leader)
                    )
                if "kill" in moments and "moved" not in moments and failover.done():
                    moments["moved"] = time.monotonic()
                    # Publishes started before the new leader was known end within the
                    # publish timeout; after that no answer may be a 503.
                    await asyncio.sleep(float(PUBLISH_TIMEOUT) + 1.0)
                    snapshots["leaders moved"] = answers(callers)[503]
                    cluster.launch_broker(leader)
                    restart = asyncio.create_task(
                        asyncio.to_thread(cluster.wait_available, [leader])
                    )
                callers[i % 2].submit(item)
                await asyncio.sleep(SPACING_SECONDS)
            assert "moved" in moments, "the run ended before the leaders moved: make it longer"
            await restart
            moments["back"] = time.monotonic()
            async with asyncio.timeout(180):
                results = [*(await caller_a.join()), *(await caller_b.join())]
            total = answers(callers)
    finally:
        codes = [await replica.stop() for replica in replicas]
        done.set()
        await reader

    expected = {expected_event_id(handlers[i % 2], item) for i, item in enumerate(notices)}
    events = [e for t in event_topics for e in seen.of(t)]
    for event in events[:: max(1, len(events) // 30)]:
        validate_event(event)
    ids = Counter(e["event_id"] for e in events)
    figures(
        f"broker {leader} (leader of {topics.dlr}:0) SIGKILLed after {COUNT // 5} callbacks; "
        f"new leaders after {moments['moved'] - moments['kill']:.1f} s; broker back after "
        f"{moments['back'] - moments['kill']:.1f} s; answers {dict(total)}; 503s before the "
        f"kill {snapshots['before the kill']}, by the time leaders had moved "
        f"{snapshots['leaders moved']}, in all {total[503]}; {len(events)} event records, "
        f"{len(ids)} distinct event_ids, {sum(n - 1 for n in ids.values())} stored twice"
    )
    assert codes == [0, 0], "\n".join(r.tail() for r in replicas)
    assert [r.outcome for r in results] == ["delivered"] * COUNT
    assert set(total) <= {200, 503}, total
    assert snapshots["before the kill"] == 0
    assert total[503] > 0, "writes to the killed leader's partitions must have been refused"
    assert total[503] == snapshots["leaders moved"], "no 503 once the new leaders took writes"
    assert set(ids) == expected, "each callback's event exactly once by event_id"
    assert seen.of(topics.dead_letter) == []
