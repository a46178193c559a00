"""Two sender replicas sharing one account, on the three-broker cluster, with faults mid-run.

- The broker leading partition 0 of the results topic is SIGKILLed while 10,000 requests
  are being sent, and started again: every request ends with exactly one result (a result
  stored twice carries one event_id), none fails, every delivery report reaches Kafka, and
  requests submitted twice stay within the replicas' in-flight windows.
- One of the two replicas is SIGKILLed: the other takes its partitions. The test prints how
  long the consumer group took to move them and how many requests were submitted twice,
  bounded by the dead replica's in-flight window (the SMPP window times its binds).

Both replicas bind the same login, two binds each, with ``system_type`` MCON4: the
simulator enforces the provider's one-connection-per-login rule otherwise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
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
    group_members,
    new_leader,
    produce,
    replica_env,
    requests,
    wait_for,
)
from tests.eventcheck import validate_event

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

COUNT = 10_000
KEYS = 500
WINDOW = 64
BINDS = 2
# Paced so that the run is still going when the killed broker is back (about 25 s in all).
RATE_PER_REPLICA = "200"


def simulator_config() -> SimulatorSettings:
    return SimulatorSettings(
        accounts={"gateway": PASSWORD},
        rate_limit_per_second=None,
        duplicate_window_seconds=None,  # count resends ourselves instead of refusing them
        max_recorded_submits=2 * COUNT,
        dlr_retry_seconds=1.0,
    )


def replicas(
    cluster: LocalKafkaCluster, topics: TopicSettings, port: int, run: str, tmp_path: Path
) -> list[Replica]:
    settings = {
        "SMPP_SYSTEM_TYPE": "MCON4",
        "SMPP_BINDS": str(BINDS),
        "SMPP_WINDOW": str(WINDOW),
        "RATE_PER_SECOND": RATE_PER_REPLICA,
    }
    return [
        Replica(
            name, replica_env(cluster, topics, port, f"group-{run}", **settings), tmp_path / name
        )
        for name in ("sender-a", "sender-b")
    ]


async def start_both(
    cluster: LocalKafkaCluster,
    topics: TopicSettings,
    run: str,
    senders: list[Replica],
    *,
    reports: bool,
) -> None:
    """Start the replicas, and produce the requests once the group holds both, so the
    figures are the fault's and not the join's (a join during a backlog is
    test_sender_scale_up.py's)."""
    for sender in senders:
        await sender.start()
    await _group_settles(cluster.bootstrap_servers, f"group-{run}", len(senders), *senders)
    await produce(
        cluster.bootstrap_servers, topics.send, requests(run, COUNT, KEYS, reports=reports)
    )


def resubmitted(simulator: SmppSimulator, seen: Seen, topics: TopicSettings) -> int:
    """Requests the provider received more than once (each request has its own phone).

    Each is identifiable: its one result names one of its submits' message ids, so the
    other submits are the duplicates (their delivery reports match no result).
    """
    ids_by_phone: dict[str, set[str]] = defaultdict(set)
    for record in simulator.submits:
        ids_by_phone[record.destination_addr].add(record.message_id)
    assert len(ids_by_phone) == COUNT
    resulted = {
        recipient["phone"]: set(recipient["message_ids"])
        for event in seen.of(topics.send_results)
        for recipient in event["recipients"]
    }
    twice = {phone: ids for phone, ids in ids_by_phone.items() if len(ids) > 1}
    for phone, ids in twice.items():
        assert len(resulted[phone]) == 1, (phone, resulted[phone])
        assert resulted[phone] < ids, (phone, ids, resulted[phone])
    return len(twice)


def check_results(
    seen: Seen, topics: TopicSettings, simulator: SmppSimulator, *, reports: bool
) -> dict[str, int]:
    """Every request one result (by event_id), none failed, every report on Kafka."""
    results = seen.of(topics.send_results)
    for event in results[:: len(results) // 20]:
        validate_event(event)
    by_request = seen.ids_by(topics.send_results, "request_id")
    assert len(by_request) == COUNT
    assert all(len(ids) == 1 for ids in by_request.values()), "one result per request"
    assert Counter(e["outcome"] for e in results) == {"accepted": len(results)}
    if reports:
        reported = {e["message_id"] for e in seen.of(topics.dlr)}
        submitted = {record.message_id for record in simulator.submits}
        assert submitted <= reported, f"{len(submitted - reported)} delivery reports not on Kafka"
    return {"result records": len(results), "stored twice": len(results) - COUNT}


async def test_results_leader_sigkilled_mid_run_with_two_replicas(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics, run = cluster_topics, uuid.uuid4().hex[:6]
    seen, done = Seen(), asyncio.Event()
    reader = asyncio.create_task(
        follow(cluster.bootstrap_servers, [topics.send_results, topics.dlr], seen, done)
    )
    async with SmppSimulator(simulator_config()) as simulator:
        senders = replicas(cluster, topics, simulator.port, run, tmp_path)
        try:
            await start_both(cluster, topics, run, senders, reports=True)
            started = time.monotonic()
            await wait_for("traffic", lambda: simulator.stats.submits >= COUNT // 4, 120, *senders)
            leader = await asyncio.to_thread(cluster.leader_of, topics.send_results, 0)
            killed_at = simulator.stats.submits
            cluster.kill_broker(leader)
            t_kill = time.monotonic()
            moved = await asyncio.to_thread(new_leader, cluster, topics.send_results, leader)
            failover = time.monotonic() - t_kill
            cluster.launch_broker(leader)  # from this thread: the JVM is tied to its starter
            await asyncio.to_thread(cluster.wait_available, [leader])
            back = time.monotonic() - t_kill
            restarted_at = simulator.stats.submits

            def complete() -> bool:
                return len(seen.ids_by(topics.send_results, "request_id")) >= COUNT and {
                    r.message_id for r in simulator.submits
                } <= {e["message_id"] for e in seen.of(topics.dlr)}

            await wait_for("every result and report", complete, 240, *senders)
            elapsed = time.monotonic() - started
        finally:
            codes = [await sender.stop() for sender in senders]
            done.set()
            await reader
        counts = check_results(seen, topics, simulator, reports=True)
        twice = resubmitted(simulator, seen, topics)

    figures(
        f"leader of {topics.send_results}:0 was broker {leader}, SIGKILLed after "
        f"{killed_at} submits; partition 0 led by broker {moved} after {failover:.1f} s; "
        f"broker {leader} available again after {back:.1f} s ({restarted_at} submits by then); "
        f"{COUNT} requests done in {elapsed:.1f} s; {counts['result records']} result records "
        f"({counts['stored twice']} stored twice, same event_id); {twice} requests submitted "
        f"twice (bound {2 * WINDOW * BINDS}); {simulator.stats.dlrs_acked} reports acknowledged"
    )
    assert killed_at < COUNT, "the kill must come in the middle of the run"
    assert codes == [0, 0], "\n".join(s.tail() for s in senders)
    assert twice <= 2 * WINDOW * BINDS


async def test_one_replica_sigkilled_the_other_takes_its_partitions(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics, run = cluster_topics, uuid.uuid4().hex[:6]
    seen, done = Seen(), asyncio.Event()
    reader = asyncio.create_task(
        follow(cluster.bootstrap_servers, [topics.send_results], seen, done)
    )
    group = f"group-{run}"
    async with SmppSimulator(simulator_config()) as simulator:
        survivor, victim = replicas(cluster, topics, simulator.port, run, tmp_path)
        try:
            await start_both(cluster, topics, run, [survivor, victim], reports=False)
            # Both replicas sending: the victim dies with requests in flight.
            both = simulator.stats.submits + COUNT // 10
            await wait_for("both replicas sending", lambda: simulator.stats.submits >= both,
                           120, survivor, victim)  # fmt: skip
            await victim.kill()
            t_kill, killed_at = time.monotonic(), simulator.stats.submits
            moved = await _group_settles(cluster.bootstrap_servers, group, 1, survivor)

            def complete() -> bool:
                return len(seen.ids_by(topics.send_results, "request_id")) >= COUNT

            await wait_for("every result", complete, 240, survivor)
            finished = time.monotonic() - t_kill
        finally:
            code = await survivor.stop()
            await victim.stop()
            done.set()
            await reader
        counts = check_results(seen, topics, simulator, reports=False)
        twice = resubmitted(simulator, seen, topics)

    figures(
        f"replica SIGKILLed after {killed_at} submits; the group had one member, Stable, "
        f"{moved:.1f} s later; the survivor finished {finished:.1f} s after the kill; "
        f"{counts['result records']} result records ({counts['stored twice']} stored twice, "
        f"same event_id); {twice} requests submitted twice (bound: the dead replica's window "
        f"{WINDOW} x {BINDS} binds = {WINDOW * BINDS})"
    )
    assert killed_at < COUNT, "the kill must come in the middle of the run"
    assert code == 0, survivor.tail()
    assert twice <= WINDOW * BINDS


async def _group_settles(bootstrap: str, group: str, members: int, *replicas: Replica) -> float:
    """Seconds until the group is Stable with ``members`` members."""
    started = time.monotonic()
    while await group_members(bootstrap, group) != ("Stable", members):
        for replica in replicas:
            assert replica.alive(), replica.tail()
        assert time.monotonic() - started < 120, f"the group did not settle on {members} in 120 s"
        await asyncio.sleep(0.2)
    return time.monotonic() - started
