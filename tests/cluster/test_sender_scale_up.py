"""A second sender replica joins while the first has a backlog in flight.

Nothing fails or crashes here: one replica paced at 50/s holds a full lane (a thousand
records started, most of them waiting for the rate gate), and a second replica of the same
group starts. The rebalance revokes the first replica's partitions (all of them: aiokafka's
protocol is eager), and the revoke must end within the group's rebalance timeout (10 s),
or the group hands the partitions on while the first replica still submits their records.
The first replica leaves the records that have not reached the provider to the next owner
at once and waits only for those that have (:mod:`gateway.sender.lane`); the next owner
reads the results already on Kafka before it fetches. A clean rebalance submits no request
twice: the documented bound (at most the window, only at a crash) is for crashes.

Before this was so, the revoke waited up to the drain timeout (30 s) for every record of
its partitions, the group dropped the replica at 10 s, and both replicas submitted the same
backlog: 1,533 of 3,000 requests twice in one run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from gateway.localkafka import LocalKafkaCluster
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.cluster.rolekit import (
    PASSWORD,
    Figures,
    Replica,
    Seen,
    follow,
    produce,
    replica_env,
    requests,
    wait_for,
)
from tests.e2e.test_send_path import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

COUNT = 3_000
WINDOW = 64


async def test_a_replica_joining_does_not_make_the_first_resubmit_its_backlog(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics, run = cluster_topics, uuid.uuid4().hex[:6]
    await produce(cluster.bootstrap_servers, topics.send, requests(run, COUNT, 300, reports=False))
    config = SimulatorSettings(
        accounts={"gateway": PASSWORD},
        rate_limit_per_second=None,
        duplicate_window_seconds=None,  # count resends ourselves instead of refusing them
        max_recorded_submits=2 * COUNT,
    )
    seen, done = Seen(), asyncio.Event()
    reader = asyncio.create_task(
        follow(cluster.bootstrap_servers, [topics.send_results], seen, done)
    )
    async with SmppSimulator(config) as simulator:
        env = replica_env(
            cluster, topics, simulator.port, f"group-{run}",
            SMPP_SYSTEM_TYPE="MCON2", SMPP_WINDOW=str(WINDOW), RATE_PER_SECOND="50",
        )  # fmt: skip
        first, second = (
            Replica(name, env | {"GATEWAY_HTTP_PORT": str(free_port())}, tmp_path / name)
            for name in ("sender-a", "sender-b")
        )
        try:
            await first.start()
            await wait_for("the first replica sending", lambda: simulator.stats.submits >= 100,
                           120, first)  # fmt: skip
            await second.start()
            joined = time.monotonic()

            def complete() -> bool:
                return len(seen.ids_by(topics.send_results, "request_id")) >= COUNT

            await wait_for("every result", complete, 240, first, second)
            took = time.monotonic() - joined
        finally:
            codes = [await first.stop(), await second.stop()]
            done.set()
            await reader
        per_phone = Counter(record.destination_addr for record in simulator.submits)

    twice = sum(1 for n in per_phone.values() if n > 1)
    figures(
        f"all {COUNT} requests done {took:.1f} s after the second replica started; {twice} "
        f"requests submitted twice (bound on a clean rebalance: none)"
    )
    assert codes == [0, 0]
    assert len(per_phone) == COUNT
    by_request = seen.ids_by(topics.send_results, "request_id")
    assert all(len(ids) == 1 for ids in by_request.values()), "one result per request"
    assert twice == 0, f"{twice} requests submitted twice on a clean rebalance"
