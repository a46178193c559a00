"""``smsc-gateway receiver`` as a process through a broker stopped with SIGTERM and started
again, while delivery reports keep coming.

As for the sender (``test_sender_kafka_restart.py``): batches expire while the partitions have
no leader, which breaks the idempotent producer's sequence; the receiver must replace its
producer, answer ESME_RX_T_APPN meanwhile (the provider delivers those reports again), say
503 on ``/readyz`` while it cannot publish and 200 once it can, and end with every report on
Kafka, without a restart.
"""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, tlv_cstr
from tests.e2e.receiver_support import receiver_env, start_receiver
from tests.e2e.support import read_events
from tests.e2e.test_sender_kafka_restart import new_topics, wait_ready

pytestmark = pytest.mark.kafka

PASSWORD = "rx-pw"
COUNT = 3000
DOWN_SECONDS = 10.0


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    """A broker of this test's own: it is stopped and started again."""
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


def receipt(message_id: int) -> DeliverSm:
    text = b"id:%d sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD"
    return DeliverSm(
        source_addr="79991234567",
        destination_addr="Shop",
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text % message_id + b" err:000",
        tlvs=(tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, str(message_id)),),
    )


async def queue_reports(simulator: SmppSimulator) -> None:
    """``COUNT`` reports, 20 every 0.1 s: they keep coming through the outage."""
    for first in range(0, COUNT, 20):
        simulator.queue_deliver("gateway", [receipt(900_000 + i) for i in range(first, first + 20)])
        await asyncio.sleep(0.1)


async def test_receiver_recovers_after_batches_expired_without_a_leader(
    own_kafka: LocalKafka, tmp_path: Path
) -> None:
    topics: TopicSettings = new_topics(own_kafka)
    config = SimulatorSettings(accounts={"gateway": PASSWORD}, incoming_retry_seconds=1.0)
    async with SmppSimulator(config) as simulator:
        env = receiver_env(own_kafka, topics, simulator.port, PASSWORD) | {
            "GATEWAY_KAFKA_REQUEST_TIMEOUT_SECONDS": "1",
            "GATEWAY_KAFKA_DELIVERY_TIMEOUT_SECONDS": "3",
            # See test_sender_kafka_restart: the producer sees the partitions without a leader.
            "GATEWAY_KAFKA_METADATA_MAX_AGE_SECONDS": "0.01",
        }
        log = tmp_path / "receiver.log"
        process = await start_receiver(env, log)
        probes = f"http://127.0.0.1:{env['GATEWAY_RECEIVER_PROBE_PORT']}"
        try:
            async with httpx.AsyncClient(base_url=probes) as http:
                await wait_ready(http, 200, 60)
                reports = asyncio.create_task(queue_reports(simulator))
                await asyncio.sleep(3)
                await asyncio.to_thread(own_kafka.stop)
                unready_after = await wait_ready(http, 503, 20)
                await asyncio.sleep(DOWN_SECONDS - unready_after)
                await asyncio.to_thread(own_kafka.start)
                ready_after = await wait_ready(http, 200, 60)
                await reports
                await asyncio.wait_for(simulator.incoming_settled(), 120)
                metrics = (await http.get("/metrics")).text
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0, log.read_text()[-3000:]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stats = simulator.stats

    assert stats.incoming_rejected == 0
    assert stats.incoming_acked == COUNT
    events = await read_events(
        own_kafka, topics.dlr, lambda found: len({e["message_id"] for e in found}) >= COUNT
    )
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        ids[event["message_id"]].add(event["event_id"])
    assert set(ids) == {str(900_000 + i) for i in range(COUNT)}
    assert all(len(event_ids) == 1 for event_ids in ids.values())
    assert ready_after < 30
    assert "smsc_kafka_producer_replacements_total{" in metrics, log.read_text()[-3000:]
