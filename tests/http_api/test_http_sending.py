"""The HTTP transport against a scripted provider (httpx.MockTransport): composition, every
error code's outcome, and the ambiguous retry - no message is ever accepted twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from gateway.errors import AbandonedError
from gateway.events.send_result import overall_outcome, send_result_event
from gateway.http_api.send_params import client_message_id
from gateway.http_api.sending import HttpTransport
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import (
    FakeProvider,
    accept,
    accept_then_time_out,
    error,
    fail,
    json_answer,
    metric,
    mock_client,
    send_request,
    status_of,
)

NOT_FOUND = json_answer({"status": -3})


def transport_for(provider: FakeProvider, **overrides: Any) -> tuple[HttpTransport, Any]:
    client, api_metrics, metrics = mock_client(provider, **overrides)
    return HttpTransport(client, client._settings, api_metrics), metrics


def our_id(request_id: str = "req-1", generation: int = 0) -> str:
    return str(client_message_id(request_id, generation))


async def test_one_send_covers_every_recipient_and_each_gets_the_one_id() -> None:
    provider = FakeProvider()
    provider.script("send", accept(provider))
    transport, _ = transport_for(provider)
    request = send_request("req-1", "79001234567", "79001234568", tags=MappingProxyType({"a": "b"}))
    results = await transport.send(request, urgent=False)
    assert [(r.phone, r.status, r.message_ids) for r, _ in results] == [
        ("79001234567", "accepted", (our_id(),)),
        ("79001234568", "accepted", (our_id(),)),
    ]
    assert [attempts for _, attempts in results] == [1, 0], "one send.php call in all"
    (call,) = provider.calls
    assert call.params["phones"] == "79001234567,79001234568"
    assert call.params["id"] == our_id()
    recipients = [r for r, _ in results]
    event = send_result_event(
        request_id="req-1",
        outcome=overall_outcome(recipients),
        occurred_at=datetime.now(UTC),
        received_at=datetime.now(UTC),
        transport="http",
        recipients=recipients,
        tags=request.tags,
        attempts=1,
    )
    validate_event(event)


@pytest.mark.parametrize(
    ("channel", "options", "expected"),
    [
        ("sms", {}, {}),
        ("flash", {}, {"flash": "1"}),
        ("viber", {}, {"viber": "1"}),
        ("social", {}, {"soc": "1"}),
        ("mail", {"subject": "Order"}, {"mail": "1", "subj": "Order"}),
        ("telegram_bot", {"bot": "@shop_bot"}, {"bot": "@shop_bot"}),
    ],
)
async def test_composition_as_over_smpp_channels_comment_sender_validity_schedule(
    channel: str, options: dict[str, str], expected: dict[str, str]
) -> None:
    provider = FakeProvider()
    provider.script("send", accept(provider))
    transport, _ = transport_for(provider, sender_id="Default")
    later = datetime.now(UTC) + timedelta(hours=2)
    request = send_request(
        "req-1",
        text="Код 1234",
        channel=channel,
        provider_options=MappingProxyType(options),
        comment="order 77",
        validity_seconds=5400,
        schedule_at=later,
        sender_id="Shop",
    )
    await transport.send(request, urgent=True)
    params = provider.calls[0].params
    assert params["mes"] == "Код 1234\n~~~\norder 77"
    assert (params["sender"], params["valid"]) == ("Shop", "01:30")
    assert params["time"] == f"0{int(later.timestamp())}"
    flags = {"flash", "viber", "soc", "mail", "subj", "bot", "call", "hlr", "ping", "tgm", "bin"}
    assert {k: v for k, v in params.items() if k in flags} == expected


async def test_call_parameters_and_the_default_sender() -> None:
    provider = FakeProvider()
    provider.script("send", accept(provider))
    transport, _ = transport_for(provider, sender_id="Default")
    options = MappingProxyType({"voice": "w", "param": "10,20"})
    await transport.send(
        send_request(text="Your code 1234", channel="call", provider_options=options), urgent=False
    )
    params = provider.calls[0].params
    assert (params["call"], params["voice"], params["param"], params["mes"]) == (
        "1",
        "w",
        "10,20",
        "Your code 1234",
    )
    assert params["sender"] == "Default"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"validity_seconds": 2 * 86400}, "validity_too_long"),
        ({"text": "x" * 1001}, "text_too_long"),
        ({"text": "a\n~~~\nb"}, "text_contains_comment_marker"),
    ],
)
async def test_what_cannot_go_over_http_is_rejected_and_nothing_is_sent(
    kwargs: dict[str, Any], code: str
) -> None:
    provider = FakeProvider()
    transport, _ = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(**kwargs), urgent=False)
    assert (outcome.status, outcome.error and outcome.error.code, attempts) == ("rejected", code, 0)
    assert provider.calls == []


@pytest.mark.parametrize(
    ("code", "reason", "with_id"),
    [
        (1, "parameters_error", False),
        (2, "authorisation_error", False),
        (5, "invalid_time", False),
        (6, "message_denied", True),
        (7, "invalid_phone", True),
        (8, "cannot_deliver", True),
    ],
)
async def test_permanent_errors_reject_the_request_with_the_assigned_id(
    code: int, reason: str, with_id: bool
) -> None:
    provider = FakeProvider()
    provider.script("send", error(code, with_id=with_id))
    transport, _ = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "rejected"
    assert outcome.error is not None
    assert outcome.error.code == reason
    assert f"error_code {code}" in outcome.error.message
    assert outcome.message_ids == ((our_id(),) if with_id else ())
    assert attempts == 1


async def test_timeout_then_error_9_then_status_found_accepts_without_sending_twice() -> None:
    provider = FakeProvider()
    # The first send is taken but its answer is lost; status.php does not show it yet; the
    # repeat gets error 9 (identical within a minute); status.php then shows it.
    provider.script("send", accept_then_time_out(provider), error(9))
    provider.script("status", lambda _: NOT_FOUND, status_of(provider, found=0))
    transport, metrics = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert (outcome.status, outcome.message_ids) == ("accepted", (our_id(),))
    assert provider.accepted == {our_id(): 1}, "the message went out exactly once"
    assert attempts == 2
    assert [c.script for c in provider.calls] == ["send", "status", "send", "status"]
    assert metric(metrics, "smsc_http_ambiguous_sends_total", resolution="found") == 1


async def test_timeout_then_status_found_accepts_without_a_second_send() -> None:
    provider = FakeProvider()
    provider.script("send", accept_then_time_out(provider), accept(provider))
    provider.script("status", status_of(provider))
    transport, _ = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "accepted"
    assert provider.accepted == {our_id(): 1}
    assert attempts == 1


async def test_a_timeout_the_provider_never_saw_is_sent_again_once_status_says_so() -> None:
    provider = FakeProvider()
    provider.script("send", fail(httpx.ReadTimeout("timed out")), accept(provider))
    provider.script("status", status_of(provider))
    transport, metrics = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "accepted"
    assert provider.accepted == {our_id(): 1}
    assert attempts == 2
    assert metric(metrics, "smsc_http_ambiguous_sends_total", resolution="not_found") == 1


async def test_error_9_for_a_request_already_taken_by_a_crashed_run_is_accepted() -> None:
    provider = FakeProvider()
    provider.accepted[our_id()] = 1  # the previous run's send, same request, same id
    provider.script("send", error(9))
    provider.script("status", status_of(provider))
    transport, _ = transport_for(provider)
    ((outcome, _),) = await transport.send(send_request(), urgent=False)
    assert (outcome.status, outcome.message_ids) == ("accepted", (our_id(),))
    assert provider.accepted == {our_id(): 1}


async def test_error_9_for_a_message_the_provider_does_not_have_backs_off_then_sends() -> None:
    provider = FakeProvider()
    provider.script("send", error(9), accept(provider))
    provider.script("status", status_of(provider))
    transport, _ = transport_for(provider)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "accepted"
    assert attempts == 2
    assert loop.time() - started >= 0.3, "waited the duplicate backoff"
    assert provider.accepted == {our_id(): 1}


async def test_when_status_never_answers_an_ambiguous_send_is_not_repeated() -> None:
    provider = FakeProvider()
    provider.script("send", accept_then_time_out(provider), accept(provider))
    provider.script("status", fail(httpx.ConnectError("refused")))
    transport, _ = transport_for(provider, give_up_after_seconds=0.5, transport_attempts=1)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.code == "outcome_unknown"
    assert (attempts, provider.accepted[our_id()]) == (1, 1)


async def test_no_money_parks_the_request_and_the_next_try_takes_a_new_id() -> None:
    provider = FakeProvider()
    provider.script("send", error(3, with_id=True), accept(provider))
    transport, _ = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert (outcome.status, attempts) == ("accepted", 2)
    assert outcome.message_ids == (our_id(generation=1),)
    first, second = provider.calls_to("send")
    assert first.params["id"] != second.params["id"]


async def test_no_money_for_longer_than_the_park_limit_fails_the_request() -> None:
    provider = FakeProvider()
    provider.script("send", error(3, with_id=True))
    transport, _ = transport_for(provider, funds_park_max_seconds=0.5, give_up_after_seconds=0.1)
    ((outcome, _),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.code == "insufficient_funds"
    assert not transport.available()


async def test_ip_blocked_waits_for_the_circuit_then_sends() -> None:
    provider = FakeProvider()
    provider.script("send", error(4), accept(provider))
    transport, _ = transport_for(provider)
    ((outcome, attempts),) = await transport.send(send_request(), urgent=False)
    assert (outcome.status, attempts) == ("accepted", 2)


async def test_ip_blocked_longer_than_the_budget_fails_at_once() -> None:
    provider = FakeProvider()
    provider.script("send", error(4))
    transport, _ = transport_for(provider, ip_block_seconds=60.0, give_up_after_seconds=1.0)
    ((outcome, _),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.code == "ip_blocked"
    assert not transport.available()
    ((second, attempts),) = await transport.send(send_request("req-2"), urgent=False)
    assert (second.status, attempts) == ("failed", 0), "an open circuit sends nothing"
    assert len(provider.calls) == 1


async def test_connection_failures_outlasting_the_budget_fail_the_request() -> None:
    provider = FakeProvider()
    provider.script("send", fail(httpx.ConnectError("refused")))
    transport, _ = transport_for(provider, give_up_after_seconds=0.3, transport_attempts=2)
    ((outcome, _),) = await transport.send(send_request(), urgent=False)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.code == "transport_error"


async def test_shutdown_abandons_a_waiting_request() -> None:
    provider = FakeProvider()
    provider.script("send", error(9))
    provider.script("status", lambda _: NOT_FOUND)
    transport, _ = transport_for(provider, duplicate_backoff_seconds=30.0)
    task = asyncio.create_task(transport.send(send_request(), urgent=False))
    await asyncio.sleep(0.2)
    transport.stop()
    with pytest.raises(AbandonedError):
        await asyncio.wait_for(task, 5)


async def test_shutdown_after_an_ambiguous_send_reports_it_accepted_if_status_finds_it() -> None:
    provider = FakeProvider()
    provider.script("send", accept_then_time_out(provider))
    provider.script("status", fail(httpx.ConnectError("refused")), status_of(provider))
    transport, _ = transport_for(
        provider, transport_attempts=1, retry_initial_seconds=5.0, retry_max_seconds=5.0
    )
    task = asyncio.create_task(transport.send(send_request(), urgent=False))
    await asyncio.sleep(0.3)
    transport.stop()
    ((outcome, _),) = await asyncio.wait_for(task, 5)
    assert outcome.status == "accepted"
    assert provider.accepted == {our_id(): 1}
