"""The receiver killed with SIGKILL in the middle of 10,000 DELIVER_SMs, then started again.

The simulator delivers each DELIVER_SM until it is answered ESME_ROK (again after a refusal,
a timeout or a lost connection). The receiver answers only once Kafka holds the event, so
after the kill and the restart every delivery report and every incoming SMS - concatenated
ones too, their parts sent out of order - must be on Kafka. Repeats are allowed (the PDUs
whose event was stored but whose answer the kill swallowed) and carry the same event_id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.localkafka import LocalKafka
from gateway.provider.codes import DELIVERY_ERRORS, STAT_TO_STATUS
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, Tlv, tlv_cstr, tlv_u8, tlv_u16
from tests.e2e.receiver_support import receiver_env, start_receiver
from tests.e2e.support import read_events
from tests.e2e.test_send_path import free_port
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

COUNT = 10_000
PASSWORD = "crash-pw"
KILL_AFTER = 3_000
STATS = sorted(STAT_TO_STATUS)
ERRS = sorted(DELIVERY_ERRORS)
CODINGS = ("gsm", "latin1", "ucs2")
CONCATS = ("udh8", "udh16", "sar")


def report(i: int) -> tuple[str, DeliverSm]:
    """A delivery report for message ``i``, cycling through every stat and err code."""
    message_id = str(30_000_000 + i)
    stat, err = STATS[i % len(STATS)], ERRS[i % len(ERRS)]
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2611220500 done date:2611220501 "
        f"stat:{stat} err:{err:03d}"
    )
    pdu = DeliverSm(
        source_addr=f"7905{i:07d}",
        destination_addr="Shop",
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text.encode(),
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, message_id),
            tlv_u8(TlvTag.MESSAGE_STATE, 2),
            Tlv(TlvTag.NETWORK_ERROR_CODE, bytes([3]) + err.to_bytes(2, "big")),
            tlv_cstr(TlvTag.SMSC_COST, "2.40"),
            tlv_u16(TlvTag.SMSC_PARTS, 1),
        ),
    )
    return message_id, pdu


def incoming_text(run: str, i: int, coding: str, long: bool) -> str:
    words = "Привет, ответ" if coding == "ucs2" else "Reply with yes"
    text = f"{words} {run} {i}"
    return f"{text} {'long ' * 60}end" if long else text


def queue_traffic(simulator: SmppSimulator, run: str) -> tuple[set[str], set[str], int]:
    """Queue COUNT DELIVER_SMs: four reports to each incoming SMS, one SMS in ten long.

    Returns the report message ids, the incoming texts and how many of the texts are long.
    """
    ids: set[str] = set()
    texts: set[str] = set()
    long_messages = 0
    queued = i = 0
    while queued < COUNT:
        if i % 5 == 4:
            coding = CODINGS[i % len(CODINGS)]
            long = i % 50 == 9 and COUNT - queued > 10
            text = incoming_text(run, i, coding, long)
            pdus = simulator.send_incoming(
                "gateway",
                f"7906{i:07d}",
                "4567",
                text,
                coding=coding,
                concat=CONCATS[i % len(CONCATS)],
                shuffle=long,
            )
            texts.add(text)
            long_messages += long
        else:
            message_id, pdu = report(i)
            simulator.queue_deliver("gateway", [pdu])
            ids.add(message_id)
            pdus = [pdu]
        queued += len(pdus)
        i += 1
    return ids, texts, long_messages


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def acked_at_least(
    simulator: SmppSimulator, count: int, process: asyncio.subprocess.Process, log: Path
) -> None:
    for _ in range(1200):
        if simulator.stats.incoming_acked >= count:
            return
        assert process.returncode is None, log_tail(log)
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {simulator.stats.incoming_acked} acked: {log_tail(log)}")


async def test_sigkill_mid_run_loses_no_report_and_no_message(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]

    def complete(events: list[dict[str, Any]]) -> bool:
        found = {e.get("message_id") for e in events} | {e.get("text") for e in events}
        return ids <= found and texts <= found

    config = SimulatorSettings(
        accounts={"gateway": PASSWORD}, incoming_retry_seconds=1.0, window=500
    )
    async with SmppSimulator(config) as simulator:
        ids, texts, long_messages = queue_traffic(simulator, run)
        env = receiver_env(kafka, topics, simulator.port, PASSWORD)
        env["GATEWAY_REASSEMBLY_GROUP_ID"] = f"crash-{run}"
        log = tmp_path / "receiver.log"
        first = await start_receiver(env, log)
        try:
            await acked_at_least(simulator, KILL_AFTER, first, log)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            await first.wait()
        acked_at_kill = simulator.stats.incoming_acked
        env["GATEWAY_RECEIVER_PROBE_PORT"] = str(free_port())
        second = await start_receiver(env, log)
        try:
            await asyncio.wait_for(simulator.incoming_settled(), 60)
            stats = simulator.stats
            # Long messages become whole on the incoming topic once the restarted
            # receiver's reassembler has read their parts: read while it runs.
            events = await read_events(kafka, [topics.dlr, topics.incoming], complete)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0, log_tail(log)

    assert KILL_AFTER <= acked_at_kill < COUNT, "the kill must come in the middle of the run"
    assert stats.incoming_rejected == 0
    assert stats.incoming_acked == COUNT
    assert stats.incoming_sent > COUNT, "the kill left DELIVER_SMs unanswered, sent again"
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
    assert long_messages >= 30
    assert not [e for e in events if e.get("partial")], "every long message arrived whole"
    repeated = {fact: ids for fact, ids in event_ids.items() if len(ids) > 1}
    assert not repeated, f"repeats with a new event_id: {list(repeated.items())[:3]}"
