"""The HTTP API client against a scripted provider (httpx.MockTransport): requests, every
error code, transport failures and host rotation, the per-credential circuit, secrets."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import httpx
import pytest

from gateway.http_api.circuit import CircuitState
from gateway.http_api.errors import (
    AuthorisationError,
    CircuitOpenError,
    HttpTransportError,
    InsufficientFundsError,
    InvalidPhoneError,
    InvalidTimeError,
    IpBlockedError,
    MessageDeniedError,
    ParametersError,
    ProviderApiError,
    TooManyRequestsError,
    UndeliverableError,
)
from tests.http_api.httpapi_support import (
    APIKEY,
    FAST,
    LOGIN,
    PASSWORD,
    FakeProvider,
    accept,
    error,
    fail,
    json_answer,
    metric,
    mock_client,
)

SEND = {"id": "42", "phones": "79001234567", "mes": "hi"}


async def test_send_posts_fmt3_utf8_with_cost_and_returns_id_cost_balance() -> None:
    provider = FakeProvider()
    provider.script("send", accept(provider))
    client, _, metrics = mock_client(provider)
    reply = await client.send(SEND)
    assert (reply.message_id, reply.count, reply.cost, reply.balance) == (
        42,
        1,
        Decimal("1.95"),
        Decimal("10.00"),
    )
    (call,) = provider.calls
    assert call.method == "POST"
    assert call.params == SEND | {
        "login": LOGIN,
        "psw": PASSWORD,
        "fmt": "3",
        "charset": "utf-8",
        "cost": "3",
    }
    assert metric(metrics, "smsc_http_requests_total", script="send", outcome="ok") == 1
    assert metric(metrics, "smsc_http_balance", credential=LOGIN) == 10.0


async def test_apikey_replaces_login_and_password() -> None:
    provider = FakeProvider()
    provider.script("balance", lambda _: json_answer({"balance": "5.50", "currency": "RUR"}))
    client, _, _ = mock_client(provider, apikey=APIKEY)
    balance = await client.balance()
    assert (balance.balance, balance.currency) == (Decimal("5.50"), "RUR")
    params = provider.calls[0].params
    assert params["apikey"] == APIKEY
    assert "login" not in params
    assert "psw" not in params
    assert client.credential == "apikey"


async def test_short_requests_go_as_get_when_configured_and_long_ones_as_post() -> None:
    provider = FakeProvider()
    provider.script("send", accept(provider))
    client, _, _ = mock_client(provider, get_max_url_chars=2000)
    await client.send(SEND)
    await client.send(SEND | {"id": "43", "mes": "x" * 2000})
    assert [c.method for c in provider.calls] == ["GET", "POST"]
    assert provider.calls[0].params["mes"] == "hi"


@pytest.mark.parametrize(
    ("code", "cls", "retriable", "with_id"),
    [
        (1, ParametersError, False, False),
        (2, AuthorisationError, False, False),
        (3, InsufficientFundsError, True, True),
        (4, IpBlockedError, True, False),
        (5, InvalidTimeError, False, False),
        (6, MessageDeniedError, False, True),
        (7, InvalidPhoneError, False, True),
        (8, UndeliverableError, False, True),
        (9, TooManyRequestsError, True, False),
        (15, ProviderApiError, False, False),
    ],
)
async def test_every_error_code_raises_its_typed_error(
    code: int, cls: type[ProviderApiError], retriable: bool, with_id: bool
) -> None:
    provider = FakeProvider()
    provider.script("send", error(code, with_id=with_id))
    client, _, metrics = mock_client(provider)
    with pytest.raises(ProviderApiError) as caught:
        await client.send(SEND)
    raised = caught.value
    assert type(raised) is cls
    assert (raised.code, raised.retriable, raised.script) == (code, retriable, "send")
    assert raised.message_id == (42 if with_id else None)
    assert len(provider.calls) == 1, "API errors are never retried by the client"
    assert metric(metrics, "smsc_http_api_errors_total", script="send", code=str(code)) == 1


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (3, FAST["funds_retry_seconds"]),
        (4, FAST["ip_block_seconds"]),
        (9, FAST["duplicate_backoff_seconds"]),
        (2, FAST["auth_error_pause_seconds"]),
    ],
)
async def test_errors_carry_a_retry_after_hint(code: int, hint: float) -> None:
    provider = FakeProvider()
    provider.script("send", error(code))
    client, _, _ = mock_client(provider)
    with pytest.raises(ProviderApiError) as caught:
        await client.send(SEND)
    assert caught.value.retry_after_seconds == pytest.approx(hint)


async def test_error_4_opens_the_credentials_circuit_and_nothing_is_sent_while_open() -> None:
    provider = FakeProvider()
    provider.script("send", error(4), accept(provider))
    provider.script("status", lambda _: json_answer({"status": 1}))
    client, _, metrics = mock_client(provider)
    with pytest.raises(IpBlockedError):
        await client.send(SEND)
    assert client.circuit.state(asyncio.get_running_loop().time()) is CircuitState.OPEN
    assert metric(metrics, "smsc_http_circuit_state", credential=LOGIN) == 1
    with pytest.raises(CircuitOpenError) as caught:
        await client.send(SEND)
    assert caught.value.reason == "ip_blocked"
    with pytest.raises(CircuitOpenError):
        await client.status("42", "79001234567")
    assert len(provider.calls) == 1, "an open circuit calls nobody"
    await asyncio.sleep(FAST["ip_block_seconds"])
    assert (await client.send(SEND)).message_id == 42
    assert metric(metrics, "smsc_http_circuit_state", credential=LOGIN) == 0


async def test_error_4_after_an_authorisation_error_blocks_for_the_longer_time() -> None:
    provider = FakeProvider()
    provider.script("send", error(2), error(4))
    client, _, _ = mock_client(provider)
    with pytest.raises(AuthorisationError):
        await client.send(SEND)
    with pytest.raises(CircuitOpenError) as paused:
        await client.send(SEND)
    assert paused.value.reason == "authorisation_error"
    await asyncio.sleep(FAST["auth_error_pause_seconds"])
    with pytest.raises(IpBlockedError) as blocked:
        await client.send(SEND)
    assert blocked.value.retry_after_seconds == pytest.approx(FAST["ip_block_after_auth_seconds"])


async def test_error_3_parks_sends_and_an_accepted_send_unparks() -> None:
    provider = FakeProvider()
    provider.script("send", error(3, with_id=True), accept(provider))
    client, _, metrics = mock_client(provider)
    with pytest.raises(InsufficientFundsError):
        await client.send(SEND)
    now = asyncio.get_running_loop().time()
    assert client.circuit.state(now) is CircuitState.PARKED
    assert client.circuit.parked_for(now) > 0
    assert metric(metrics, "smsc_http_circuit_state", credential=LOGIN) == 2
    await client.send(SEND)
    assert client.circuit.state(asyncio.get_running_loop().time()) is CircuitState.CLOSED


async def test_connection_failures_rotate_to_the_backup_host_and_retry_the_send() -> None:
    provider = FakeProvider()
    provider.script("send", fail(httpx.ConnectError("refused")), accept(provider))
    client, _, metrics = mock_client(provider)
    assert (await client.send(SEND)).message_id == 42
    assert [c.host for c in provider.calls] == ["primary.test", "backup.test"]
    assert metric(metrics, "smsc_http_retries_total", script="send", reason="transport") == 1
    assert (
        metric(metrics, "smsc_http_requests_total", script="send", outcome="transport_error") == 1
    )


async def test_a_send_that_may_have_been_processed_is_not_retried_by_the_client() -> None:
    provider = FakeProvider()
    provider.script("send", fail(httpx.ReadTimeout("timed out")), accept(provider))
    client, _, _ = mock_client(provider)
    with pytest.raises(HttpTransportError) as caught:
        await client.send(SEND)
    assert caught.value.maybe_processed
    assert len(provider.calls) == 1


@pytest.mark.parametrize(
    ("answer", "processed"),
    [
        (lambda _: httpx.Response(503), True),
        (lambda _: httpx.Response(404), False),
        (lambda _: httpx.Response(200, content=b""), True),
        (lambda _: httpx.Response(200, content=b"<html>proxy</html>"), True),
        (fail(httpx.RemoteProtocolError("disconnected")), True),
        (fail(httpx.ConnectTimeout("slow")), False),
    ],
)
async def test_transport_failures_say_whether_the_request_may_have_been_processed(
    answer: object, processed: bool
) -> None:
    provider = FakeProvider()
    provider.script("send", answer)  # type: ignore[arg-type]
    client, _, _ = mock_client(provider, transport_attempts=1)
    with pytest.raises(HttpTransportError) as caught:
        await client.send(SEND)
    assert caught.value.maybe_processed is processed


async def test_status_queries_are_retried_on_any_transport_failure_up_to_the_attempts() -> None:
    provider = FakeProvider()
    provider.script("status", fail(httpx.ReadTimeout("timed out")))
    client, _, metrics = mock_client(provider, transport_attempts=3)
    with pytest.raises(HttpTransportError):
        await client.status("42", "79001234567")
    assert [c.host for c in provider.calls] == ["primary.test", "backup.test", "primary.test"]
    assert metric(metrics, "smsc_http_retries_total", script="status", reason="transport") == 2


async def test_single_and_multi_id_status_queries() -> None:
    provider = FakeProvider()
    provider.script(
        "status",
        lambda _: json_answer(
            {"status": 1, "last_timestamp": 1700000000, "err": 0, "cost": "1.95"}
        ),
        lambda _: json_answer(
            [
                {"status": 1, "id": 42, "phone": "+79001234567", "err": 0},
                {"status": -3, "id": 43, "phone": "79001234568"},
            ]
        ),
    )
    client, _, _ = mock_client(provider)
    single = await client.status("42", "79001234567")
    assert (single.status, single.cost, single.message_id) == (1, "1.95", "42")
    many = await client.statuses([("42", "79001234567"), ("43", "79001234568")])
    assert [(s.message_id, s.phone, s.status) for s in many] == [
        ("42", "79001234567", 1),
        ("43", "79001234568", -3),
    ]
    wanted = {"id": "42,43", "phone": "79001234567,79001234568", "all": "1"}
    assert provider.calls[1].params.items() >= wanted.items()


async def test_status_queries_of_one_message_stay_within_the_per_window_limit() -> None:
    provider = FakeProvider()
    provider.script("status", lambda _: json_answer({"status": 0}))
    client, _, _ = mock_client(provider, status_per_message_per_window=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await client.status("42", "79001234567")
    assert loop.time() - started >= FAST["limit_window_seconds"] * 0.9


async def test_balance_queries_stay_within_the_per_window_limit() -> None:
    provider = FakeProvider()
    provider.script("balance", lambda _: json_answer({"balance": "1.00"}))
    client, _, _ = mock_client(provider, balance_per_window=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(client.balance() for _ in range(3)))
    assert loop.time() - started >= FAST["limit_window_seconds"] * 0.9


async def test_sends_never_exceed_the_configured_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return json_answer({"id": 1, "cnt": 1})

    client, _, _ = mock_client(
        FakeProvider(), send_concurrency=4, transport=httpx.MockTransport(handler)
    )
    await asyncio.gather(*(client.send(SEND | {"id": str(i)}) for i in range(40)))
    assert peak == 4


async def test_secrets_appear_in_no_repr_and_no_log(caplog: pytest.LogCaptureFixture) -> None:
    provider = FakeProvider()
    provider.script("send", fail(httpx.ConnectError("refused")), error(2))
    client, _, _ = mock_client(provider, apikey="", transport_attempts=2)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthorisationError):
        await client.send(SEND)
    assert PASSWORD not in repr(client)
    assert PASSWORD not in repr(client._settings)
    assert PASSWORD not in caplog.text
    assert "psw" not in caplog.text
