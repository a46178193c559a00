"""``smsc-gateway receiver`` end to end: the real process, the real broker, the simulator.

It binds (bind_receiver, or transceiver by configuration), stores what each DELIVER_SM means
on Kafka before answering it, reports ready only while bound, counts reports by stat and err
code, and on SIGTERM answers what it holds and unbinds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.smpp.constants import EsmClass, TlvTag
from gateway.smpp.pdu import DeliverSm, tlv_cstr, tlv_u16
from tests.e2e.receiver_support import receiver_env, start_receiver
from tests.e2e.support import read_events
from tests.eventcheck import validate_event

pytestmark = pytest.mark.kafka

PASSWORD = "rx-pw"
# The seed's own examples ("Checking the status").
RECEIPT = (
    b"id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)
HLR = (
    b"id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02 "
    b"cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:"
)


def report(text: bytes, message_id: str, flags: int = 0) -> DeliverSm:
    return DeliverSm(
        source_addr="79991234567",
        destination_addr="Shop",
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=text,
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, message_id),
            tlv_u16(TlvTag.SMSC_FLAGS, flags),
        ),
    )


async def eventually(check: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("bind_mode", ["receiver", "transceiver"])
async def test_receiver_stores_then_answers_and_unbinds_on_sigterm(
    kafka: LocalKafka, topics: TopicSettings, tmp_path: Path, bind_mode: str
) -> None:
    config = SimulatorSettings(accounts={"gateway": PASSWORD}, incoming_retry_seconds=0.5)
    async with SmppSimulator(config) as simulator:
        env = receiver_env(kafka, topics, simulator.port, PASSWORD)
        env["GATEWAY_RECEIVER_BIND_MODE"] = bind_mode
        log = tmp_path / "receiver.log"
        process = await start_receiver(env, log)
        probes = f"http://127.0.0.1:{env['GATEWAY_RECEIVER_PROBE_PORT']}"
        try:
            await eventually(lambda: simulator.bound("gateway") == 1)
            simulator.queue_deliver(
                "gateway",
                [
                    report(RECEIPT, "854019"),
                    report(HLR, "855469", flags=4),
                    DeliverSm(esm_class=EsmClass.DELIVERY_RECEIPT, short_message=b"garbage"),
                ],
            )
            simulator.send_incoming("gateway", "+79001112233", "4567", "Ответ: да", coding="ucs2")
            await asyncio.wait_for(simulator.incoming_settled(), 30)
            async with httpx.AsyncClient(base_url=probes) as http:
                ready = await http.get("/readyz")
                metrics = (await http.get("/metrics")).text
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()[-3000:]
            await eventually(lambda: simulator.bound("gateway") == 0)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stats = simulator.stats

    assert (stats.incoming_acked, stats.incoming_rejected) == (3, 1), log.read_text()[-3000:]
    assert ready.status_code == 200, ready.text
    assert "1 of 1 bound" in ready.text

    names = [topics.dlr, topics.incoming, topics.dead_letter]
    events = await read_events(kafka, names, lambda found: len(found) >= 4)
    for event in events:
        validate_event(event)
    by_schema = {event["schema"]: event for event in events if event["schema"] != "smsc.dlr/1"}
    reports = {event["message_id"]: event for event in events if event["schema"] == "smsc.dlr/1"}
    assert len(events) == 4
    assert reports["854019"]["stat"] == "DELIVRD"
    assert reports["854019"]["status"] == "delivered"
    assert reports["854019"]["err"] == 0
    assert reports["854019"]["err_name"] == "No error"
    assert reports["855469"]["hlr"]["imsi"] == "250023012345678"
    assert reports["855469"]["hlr"]["cn"] == "Russian Federation"
    assert by_schema["smsc.incoming/1"]["text"] == "Ответ: да"
    assert by_schema["smsc.incoming/1"]["phone"] == "79001112233"
    assert by_schema["smsc.dead-letter/1"]["reason"]["code"] == "invalid_receipt"
    assert by_schema["smsc.dead-letter/1"]["role"] == "receiver"

    bind = {"bind": "receiver-0"}
    samples = parse_metrics(metrics)
    assert samples["smsc_smpp_delivery_reports_total", (("kind", "dlr"), ("stat", "DELIVRD"))] == 1
    assert samples["smsc_smpp_delivery_reports_total", (("kind", "hlr"), ("stat", "DELIVRD"))] == 1
    assert samples["smsc_smpp_delivery_errors_total", (("err", "0"), ("err_name", "No error"))] == 2
    delivered = "smsc_smpp_deliver_sm_total"
    assert samples[delivered, labels(bind, kind="incoming", command_status="ESME_ROK")] == 1
    assert samples[delivered, labels(bind, kind="unreadable", command_status="ESME_RX_P_APPN")] == 1
    assert samples["smsc_smpp_bound", labels(bind)] == 1


def labels(base: dict[str, str], **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((base | more).items()))


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page by (name, sorted labels), read by Prometheus' parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
