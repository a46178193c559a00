"""``smsc-gateway poller`` on the real broker against the simulator's HTTP API: messages sent
over HTTP without a final report are queried and reported as ``source: poll``; messages with
a final report are left alone; the balance becomes a metric."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.envelope import dumps
from gateway.events.send_result import RecipientOutcome, overall_outcome, send_result_event
from gateway.kafka.client import KafkaPublisher
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from gateway.roles.poller import run_poller
from gateway.settings import HttpSettings, KafkaSettings, Settings, TopicSettings
from gateway.settings.http_api import PollerSettings
from gateway.settings.simulator_http_api import StatusOutcome
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import (
    LOGIN,
    fast_settings,
    metric,
    read_topic,
    send_request,
    wired,
)

pytestmark = pytest.mark.kafka

SENT = 12
REPORTED_ELSEWHERE = 3  # have a final report from another source already


def result_event(request_id: str, recipients: list[RecipientOutcome]) -> bytes:
    now = datetime.now(UTC)
    return dumps(
        send_result_event(
            request_id=request_id,
            outcome=overall_outcome(recipients),
            occurred_at=now,
            received_at=now,
            transport="http",
            recipients=recipients,
            attempts=1,
        )
    )


def webhook_report(recipient: RecipientOutcome) -> bytes:
    report = DeliveryReport(
        source="webhook",
        message_id=recipient.message_ids[0],
        phone=recipient.phone,
        status="delivered",
        final=True,
        stat="1",
        received_at=datetime.now(UTC),
    )
    return dumps(dlr_event(report))


async def test_the_poller_reports_what_status_says_about_messages_without_a_final_report(
    kafka: LocalKafka, topics: TopicSettings
) -> None:
    # Statuses turn final 1.5 s after sending: the first poll sees "transferred to operator".
    sim = {
        "status_delay_seconds": 1.5,
        "outcomes": (StatusOutcome(1, 0, 3.0), StatusOutcome(20, 1, 1.0)),
    }
    async with wired(sim) as w:
        publisher = KafkaPublisher(
            KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), Metrics()
        )
        await publisher.start()
        recipients: list[RecipientOutcome] = []
        try:
            for i in range(SENT // 2):  # two phones a request: one id, two messages
                request = send_request(f"poll-{i}", f"7902{i:07d}", f"7903{i:07d}")
                results = await w.transport.send(request, urgent=False)
                outcomes = [outcome for outcome, _ in results]
                recipients += outcomes
                await publisher.publish(
                    topics.send_results,
                    request.request_id.encode(),
                    result_event(request.request_id, outcomes),
                )
            for recipient in recipients[:REPORTED_ELSEWHERE]:
                await publisher.publish(
                    topics.dlr, recipient.message_ids[0].encode(), webhook_report(recipient)
                )
        finally:
            await publisher.stop()

        settings = dataclasses.replace(
            Settings(),
            kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
            topics=topics,
            http=HttpSettings(host="127.0.0.1", port=0),
            http_api=fast_settings((w.sim.base_url,)),
            poller=PollerSettings(
                min_age_seconds=0.5,
                repoll_seconds=0.5,
                interval_seconds=0.3,
                batch_size=4,
                balance_interval_seconds=0.3,
            ),
        )
        metrics = Metrics()
        stop = asyncio.Event()
        poller = asyncio.create_task(run_poller(settings, metrics, stop))
        polled = {(r.message_ids[0], r.phone) for r in recipients[REPORTED_ELSEWHERE:]}

        def all_final(events: list[dict[str, object]]) -> bool:
            final = {
                (e["message_id"], e["phone"])
                for e in events
                if e["source"] == "poll" and e["final"]
            }
            return final >= polled

        try:
            events = await read_topic(
                kafka.bootstrap_servers, topics.dlr, all_final, wait_seconds=60
            )
        finally:
            stop.set()
            await asyncio.wait_for(poller, 30)
        sim_errors = w.sim.stats.errors

    for event in events:
        validate_event(event)
    from_poll = [e for e in events if e["source"] == "poll"]
    assert {(e["message_id"], e["phone"]) for e in from_poll if e["final"]} == polled
    assert not {(e["message_id"], e["phone"]) for e in from_poll} & {
        (r.message_ids[0], r.phone) for r in recipients[:REPORTED_ELSEWHERE]
    }, "messages with a final report are not polled"
    assert {e["status"] for e in from_poll if not e["final"]} <= {"enroute"}
    assert {e["status"] for e in from_poll if e["final"]} <= {"delivered", "undeliverable"}
    finals = [e for e in from_poll if e["final"]]
    assert len(finals) == len(polled), "one final report per message"
    assert all(e["err_name"] is not None and e["done_date"] and e["cost"] == "1.95" for e in finals)
    assert not [k for k in sim_errors if k[1] == 9], sim_errors
    assert metric(metrics, "smsc_http_balance", credential=LOGIN) > 0
    assert metric(metrics, "smsc_poller_reports_total", status="delivered") > 0
