"""The receiver role on the three-broker cluster, a broker SIGKILLed mid-run of 10,000
DELIVER_SMs and started again.

The simulator delivers each DELIVER_SM until it is answered ESME_ROK, and the receiver
answers ESME_ROK only once Kafka acknowledged the event (acks=all, min.insync.replicas=2).
So once the simulator has nothing left to deliver, every report and every incoming SMS must
be readable from the two brokers left, the killed one still down: an event answered before
it was on the in-sync replicas could have been only on the dead leader, and would be missing
here (a returning broker drops what it had not replicated). The PDUs whose partition had no
leader until the cluster fenced the dead broker are refused or time out, and are delivered
again. The broker is started again at the end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.localkafka import LocalKafkaCluster
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from tests.cluster.rolekit import Figures, Replica, new_leader
from tests.e2e.receiver_support import receiver_env
from tests.e2e.support import read_events
from tests.e2e.test_receiver_crash import COUNT, KILL_AFTER, PASSWORD, queue_traffic
from tests.eventcheck import validate_event

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


async def acked_at_least(simulator: SmppSimulator, count: int, receiver: Replica) -> None:
    deadline = time.monotonic() + 120
    while simulator.stats.incoming_acked < count:
        assert receiver.alive(), receiver.tail()
        assert time.monotonic() < deadline, f"{simulator.stats.incoming_acked} acked"
        await asyncio.sleep(0.05)


async def test_broker_sigkilled_mid_run_of_deliver_sms_loses_nothing(
    cluster: LocalKafkaCluster, cluster_topics: TopicSettings, tmp_path: Path, figures: Figures
) -> None:
    topics, run = cluster_topics, uuid.uuid4().hex[:6]

    def complete(events: list[dict[str, Any]]) -> bool:
        found = {e.get("message_id") for e in events} | {e.get("text") for e in events}
        return ids <= found and texts <= found

    config = SimulatorSettings(
        accounts={"gateway": PASSWORD},
        incoming_retry_seconds=1.0,
        response_timeout_seconds=5.0,
        window=500,
    )
    async with SmppSimulator(config) as simulator:
        ids, texts, _ = queue_traffic(simulator, run)
        env = receiver_env(cluster, topics, simulator.port, PASSWORD)
        env["GATEWAY_REASSEMBLY_GROUP_ID"] = f"clu-{run}"
        receiver = Replica("receiver", env, tmp_path / "receiver.log", role="receiver")
        await receiver.start()
        try:
            await acked_at_least(simulator, KILL_AFTER, receiver)
            leader = await asyncio.to_thread(cluster.leader_of, topics.dlr, 0)
            cluster.kill_broker(leader)
            t_kill, acked_at_kill = time.monotonic(), simulator.stats.incoming_acked
            await asyncio.to_thread(new_leader, cluster, topics.dlr, leader)
            moved = time.monotonic() - t_kill
            await asyncio.wait_for(simulator.incoming_settled(), 180)
            settled = time.monotonic() - t_kill
            stats = simulator.stats
            events = await read_events(cluster, [topics.dlr, topics.incoming], complete)
            assert not cluster.is_running(leader), "read from the brokers left"
        finally:
            code = await receiver.stop()
            cluster.launch_broker(leader)  # from this thread: the JVM is tied to its starter
        await asyncio.to_thread(cluster.wait_available, [leader])

    figures(
        f"broker {leader} (leader of {topics.dlr}:0) SIGKILLed with {acked_at_kill} of "
        f"{COUNT} DELIVER_SMs acknowledged; new leader after {moved:.1f} s; all acknowledged "
        f"{settled:.1f} s after the kill; {stats.incoming_sent} sent, {stats.incoming_refused} "
        f"refused (temporary error), {stats.incoming_timed_out} timed out; {len(events)} events "
        f"read from the two brokers left"
    )
    assert code == 0, receiver.tail()
    assert acked_at_kill < COUNT, "the kill must come in the middle of the run"
    assert stats.incoming_rejected == 0
    assert stats.incoming_acked == COUNT
    event_ids: dict[str, set[str]] = defaultdict(set)
    for n, event in enumerate(events):
        if n % 500 == 0:
            validate_event(event)
        fact = event["message_id"] if event["schema"] == "smsc.dlr/1" else event["text"]
        event_ids[fact].add(event["event_id"])
    reported = {e["message_id"] for e in events if e["schema"] == "smsc.dlr/1"}
    received = {e["text"] for e in events if e["schema"] == "smsc.incoming/1"}
    assert reported == ids, f"{len(ids - reported)} reports lost"
    assert received == texts, f"{len(texts - received)} incoming messages lost"
    assert not [e for e in events if e.get("partial")], "every long message arrived whole"
    repeated = {fact: ids for fact, ids in event_ids.items() if len(ids) > 1}
    assert not repeated, f"repeats with a new event_id: {list(repeated.items())[:3]}"
