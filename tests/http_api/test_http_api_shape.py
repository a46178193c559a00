"""A send over HTTP and the same send over SMPP give results and delivery reports of the same
shape: the same keys, the same types, both valid against the schemas.

HTTP: the transport against the simulator's HTTP API, the report from status.php as the
poller builds it. SMPP: the result as the sender builds it (one id per part), the report the
SMPP simulator sends for the message, read by the gateway's DELIVER_SM interpreter.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.send_result import RecipientOutcome, overall_outcome, send_result_event
from gateway.http_api.reports import poll_report
from gateway.inbound.deliver_sm import interpret
from gateway.simulator import DlrOutcome, build_delivery_report
from gateway.simulator.dlr import AcceptedMessage
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import send_request, wired

PHONE = "79001234567"


def result(transport: str, recipients: list[RecipientOutcome]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return send_result_event(
        request_id="shape-1",
        outcome=overall_outcome(recipients),
        occurred_at=now,
        received_at=now,
        transport=transport,
        recipients=recipients,
        tags={"team": "checkout"},
        attempts=1,
    )


async def http_side() -> tuple[dict[str, Any], dict[str, Any]]:
    async with wired({"status_delay_seconds": 0.05}) as w:
        request = send_request("shape-1", PHONE, text="Your code 1234")
        outcomes = [outcome for outcome, _ in await w.transport.send(request, urgent=False)]
        await asyncio.sleep(0.1)
        status = await w.client.status(outcomes[0].message_ids[0], PHONE)
    return result("http", outcomes), dlr_event(poll_report(status, datetime.now(UTC)))


def smpp_side() -> tuple[dict[str, Any], dict[str, Any]]:
    outcomes = [RecipientOutcome(PHONE, "accepted", ("100000001",))]
    submitted = datetime.now(UTC)
    message = AcceptedMessage("100000001", 5, 1, "Shop", 1, 1, PHONE, submitted)
    pdu = build_delivery_report(
        message, DlrOutcome(), submitted, cost=Decimal("1.95"), mccmnc="25001"
    )
    report = interpret(pdu, datetime.now(UTC))
    assert isinstance(report, DeliveryReport)
    return result("smpp", outcomes), dlr_event(report)


def types_of(event: dict[str, Any]) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in event.items() if value is not None}


async def test_http_and_smpp_sends_give_results_and_reports_of_the_same_shape() -> None:
    http_result, http_report = await http_side()
    smpp_result, smpp_report = smpp_side()
    for event in (http_result, http_report, smpp_result, smpp_report):
        validate_event(event)

    assert http_result.keys() == smpp_result.keys()
    assert http_result["recipients"][0].keys() == smpp_result["recipients"][0].keys()
    assert types_of(http_result) == types_of(smpp_result)
    assert (http_result["transport"], smpp_result["transport"]) == ("http", "smpp")
    assert http_result["outcome"] == smpp_result["outcome"] == "accepted"
    assert all(i.isdigit() for i in http_result["recipients"][0]["message_ids"])

    assert http_report.keys() == smpp_report.keys()
    both = {k for k in http_report if http_report[k] is not None and smpp_report[k] is not None}
    assert {k: type(http_report[k]) for k in both} == {k: type(smpp_report[k]) for k in both}
    assert (http_report["source"], smpp_report["source"]) == ("poll", "smpp")
    for key in ("status", "final", "phone", "err", "parts"):
        assert http_report[key] == smpp_report[key], key
    # The provider writes the cost as it likes per channel ("1.95" / "1.9500"): same amount.
    assert Decimal(http_report["cost"]) == Decimal(smpp_report["cost"])
    assert http_report["message_id"] == http_result["recipients"][0]["message_ids"][0]
