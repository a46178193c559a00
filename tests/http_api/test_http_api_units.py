"""The HTTP API's pure parts: limits, the circuit, answers, poll reports, the pending set,
and the settings sections."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from gateway.cli import ROLES
from gateway.errors import ConfigError
from gateway.events.delivery import dlr_event
from gateway.http_api.circuit import CircuitState, CredentialCircuit
from gateway.http_api.errors import HttpTransportError, TooManyRequestsError
from gateway.http_api.limits import PrioritySemaphore, WindowLimiter
from gateway.http_api.pending import PendingSet, PendingTracker
from gateway.http_api.replies import MessageStatus, parse_send, parse_statuses, read_answer
from gateway.http_api.reports import poll_report
from gateway.kafka.records import Record
from gateway.metrics import Metrics
from gateway.roles.poller import run_poller
from gateway.settings import Settings, load_settings
from gateway.settings.http_api import HttpApiSettings, PollerSettings
from tests.eventcheck import validate_event


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_window_limiter_allows_the_limit_per_window_and_key() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(2, 60.0, clock)
    assert limiter.try_acquire("a") == 0
    clock.now = 10.0
    assert limiter.try_acquire("a") == 0
    assert limiter.try_acquire("a") == pytest.approx(50.0)
    assert limiter.try_acquire("b") == 0, "keys are counted apart"
    clock.now = 60.5
    assert limiter.try_acquire("a") == 0
    assert limiter.try_acquire("a") == pytest.approx(9.5)


def test_window_limiter_forgets_keys_idle_for_a_window() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(1, 60.0, clock)
    for key in range(1000):
        limiter.try_acquire(key)
    clock.now = 61.0
    limiter.try_acquire("new")
    assert len(limiter) == 1


async def test_priority_semaphore_serves_urgent_waiters_first() -> None:
    semaphore = PrioritySemaphore(1)
    order: list[str] = []
    await semaphore.acquire()

    async def take(name: str, urgent: bool) -> None:
        async with semaphore.hold(urgent=urgent):
            order.append(name)

    tasks = [asyncio.create_task(take(n, n.startswith("u"))) for n in ("b1", "b2", "u1", "u2")]
    await asyncio.sleep(0)
    semaphore.release()
    await asyncio.gather(*tasks)
    assert order == ["u1", "u2", "b1", "b2"]


async def test_priority_semaphore_survives_cancelled_waiters() -> None:
    semaphore = PrioritySemaphore(1)
    await semaphore.acquire()
    waiter = asyncio.create_task(semaphore.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    semaphore.release()
    await asyncio.wait_for(semaphore.acquire(), 1)


def test_circuit_states() -> None:
    settings = HttpApiSettings(ip_block_seconds=600, ip_block_after_auth_seconds=1800)
    circuit = CredentialCircuit(settings)
    assert circuit.state(0) is CircuitState.CLOSED
    assert circuit.on_error(4, 0) == 600
    assert circuit.blocked(100) == ("ip_blocked", 500)
    assert circuit.state(600) is CircuitState.CLOSED
    assert circuit.on_error(2, 1000) == settings.auth_error_pause_seconds
    assert circuit.on_error(4, 1100) == 1800, "after an auth error the block is longer"
    assert circuit.on_error(3, 5000) == settings.funds_retry_seconds
    assert circuit.state(5001) is CircuitState.PARKED
    circuit.on_send_accepted()
    assert circuit.state(5001) is CircuitState.CLOSED
    assert circuit.on_error(9, 0) == settings.duplicate_backoff_seconds
    assert circuit.on_error(7, 0) is None


def test_read_answer_raises_api_errors_and_refuses_what_is_not_json() -> None:
    with pytest.raises(TooManyRequestsError) as caught:
        read_answer(
            b'{"error": "duplicate request, wait a minute", "error_code": 9}',
            "send",
            lambda c: 60.0,
        )
    assert caught.value.retry_after_seconds == 60.0
    with pytest.raises(HttpTransportError) as bad:
        read_answer(b"OK - 1 SMS, ID - 1", "send", lambda c: None)
    assert bad.value.maybe_processed
    assert parse_send({"id": 63, "cnt": 1, "cost": "3.8", "balance": "286.55"}).balance == Decimal(
        "286.55"
    )
    with pytest.raises(HttpTransportError):
        parse_send({"cnt": 1})
    with pytest.raises(HttpTransportError):
        parse_statuses({"status": 1})


def status(code: int, **fields: object) -> MessageStatus:
    raw = {"status": code, **fields}
    return MessageStatus(
        message_id="101",
        phone="79001234567",
        status=code,
        err=fields.get("err"),  # type: ignore[arg-type]
        last_timestamp=1700000000,
        last_date="14.11.2023 22:13:20",
        flag=fields.get("flag"),  # type: ignore[arg-type]
        cost="1.95",
        parts=1,
        raw=raw,
    )


@pytest.mark.parametrize(
    ("code", "normalized", "final", "extra"),
    [
        (-3, "unknown", True, None),
        (-1, "accepted", False, None),
        (0, "enroute", False, None),
        (1, "delivered", True, None),
        (2, "delivered", True, "read"),
        (3, "expired", True, None),
        (20, "undeliverable", True, None),
        (22, "rejected", True, None),
        (25, "undeliverable", True, None),
        (77, "unknown", False, None),
    ],
)
def test_poll_reports_map_status_codes_as_the_webhook_does(
    code: int, normalized: str, final: bool, extra: str | None
) -> None:
    report = poll_report(status(code, err=0, flag=1), datetime.now(UTC))
    assert (report.source, report.status, report.final, report.extra_status) == (
        "poll",
        normalized,
        final,
        extra,
    )
    assert report.stat == str(code)
    assert (report.done_at is not None) is final
    assert report.flags is not None
    assert report.flags["message_type"] == "flash"
    validate_event(dlr_event(report))


def test_poll_reports_name_the_error_and_keep_no_text() -> None:
    answer = status(20, err=1, message="secret text", comment="c", imsi="250011234567890")
    report = poll_report(answer, datetime.now(UTC))
    assert report.err_name == "The subscriber does not exist"
    assert report.hlr == {"imsi": "250011234567890"}
    assert "message" in answer.raw
    event = dlr_event(
        poll_report(MessageStatus("1", "7900", 1, raw={"status": 1}), datetime.now(UTC))
    )
    validate_event(event)


def test_pending_set_queues_fresh_then_repolls_and_forgets_finished() -> None:
    pending = PendingSet(
        PollerSettings(min_age_seconds=10, repoll_seconds=100, max_age_seconds=1000)
    )
    pending.accepted("1", "7900", at=0)
    pending.accepted("2", "7900", at=5)
    assert pending.take_due(now=9, limit=10) == []
    (first,) = pending.take_due(now=10, limit=10)
    assert first.key == ("1", "7900")
    pending.polled(first, final=False, now=10)
    assert [e.key for e in pending.take_due(now=20, limit=10)] == [("2", "7900")]
    assert pending.take_due(now=50, limit=10) == [], "the repoll waits repoll_seconds"
    assert [e.key for e in pending.take_due(now=110, limit=10)] == [("1", "7900")]


def test_pending_set_final_reports_win_even_over_late_results() -> None:
    pending = PendingSet(PollerSettings(min_age_seconds=1, max_age_seconds=10))
    pending.accepted("1", "7900", at=0)
    pending.finished("1", "7900")
    pending.accepted("1", "7900", at=0)  # the result read after its final report
    pending.finished("2", "7900")
    pending.accepted("2", "7900", at=0)
    assert len(pending) == 0


def test_pending_set_is_bounded_and_drops_old_entries() -> None:
    drops: list[str] = []
    settings = PollerSettings(min_age_seconds=1, max_age_seconds=100, max_pending=3)
    pending = PendingSet(settings, on_drop=drops.append)
    for i in range(5):
        pending.accepted(str(i), "7900", at=i)
    assert len(pending) == 3
    assert drops == ["evicted", "evicted"]
    assert [e.message_id for e in pending.take_due(now=102.5, limit=10)] == ["3", "4"]
    assert drops[2:] == ["expired"]


def test_pending_set_returned_entries_come_first() -> None:
    pending = PendingSet(PollerSettings(min_age_seconds=1, max_age_seconds=100))
    for i in range(3):
        pending.accepted(str(i), "7900", at=0)
    pending.returned(pending.take_due(now=5, limit=2))
    assert [e.message_id for e in pending.take_due(now=5, limit=3)] == ["0", "1", "2"]


def test_tracker_reads_accepted_http_results_and_final_reports() -> None:
    pending = PendingSet(PollerSettings(min_age_seconds=1))
    tracker = PendingTracker(
        pending, results_topic="results", dlr_topic="dlr", settings=PollerSettings()
    )
    result = {
        "outcome": "accepted",
        "transport": "http",
        "recipients": [
            {"phone": "7900", "status": "accepted", "message_ids": ["5"]},
            {"phone": "7901", "status": "rejected", "message_ids": []},
        ],
    }
    smpp = result | {
        "transport": "smpp",
        "recipients": [{"phone": "7902", "status": "accepted", "message_ids": ["6"]}],
    }
    for offset, (topic, value) in enumerate(
        [
            ("results", orjson.dumps(result)),
            ("results", orjson.dumps(smpp)),
            ("results", b"not json"),
            ("dlr", orjson.dumps({"message_id": "5", "phone": "7900", "final": False})),
        ]
    ):
        tracker.on_record(Record(topic, 0, offset, None, value, 1_000))
    assert ("5", "7900") in pending
    assert len(pending) == 1
    tracker.on_record(
        Record(
            "dlr", 0, 9, None, orjson.dumps({"message_id": "5", "phone": "7900", "final": True}), 2
        )
    )
    assert len(pending) == 0


def test_settings_sections_load_from_the_environment_and_hide_secrets() -> None:
    settings = load_settings(
        {
            "GATEWAY_HTTP_API_BASE_URLS": "https://a.test,https://b.test",
            "GATEWAY_HTTP_API_LOGIN": "shop",
            "GATEWAY_HTTP_API_PASSWORD": "pw-9x7-marker",
            "GATEWAY_HTTP_API_SEND_CONCURRENCY": "8",
            "GATEWAY_POLLER_TRANSPORTS": "http,smpp",
            "GATEWAY_POLLER_BATCH_SIZE": "50",
        }
    )
    assert settings.http_api.base_urls == ("https://a.test", "https://b.test")
    assert settings.http_api.send_concurrency == 8
    assert settings.poller.transports == ("http", "smpp")
    assert settings.http_api.problems() == []
    assert "pw-9x7-marker" not in repr(settings)


def test_settings_refuse_what_would_earn_error_9_and_report_it_all_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "GATEWAY_HTTP_API_SEND_CONCURRENCY": "15",
                "GATEWAY_HTTP_API_PASSWORD": "pw-4q2-marker",
                "GATEWAY_POLLER_BATCH_SIZE": "0",
            }
        )
    text = str(caught.value)
    assert "send_concurrency" in text
    assert "batch_size" in text
    assert "pw-4q2-marker" not in text
    assert HttpApiSettings().problems() == ["set apikey, or login and password"]
    with pytest.raises(ConfigError, match="status_concurrency"):
        HttpApiSettings(status_concurrency=5)
    with pytest.raises(ConfigError, match="below 15"):
        HttpApiSettings(send_concurrency=12, status_concurrency=3)
    with pytest.raises(ConfigError, match="transports"):
        PollerSettings(transports=("sms",))


async def test_the_poller_role_is_registered_and_refuses_to_start_without_a_credential() -> None:
    assert ROLES["poller"] is run_poller
    with pytest.raises(ConfigError, match="set apikey, or login and password"):
        await run_poller(Settings(), Metrics(), asyncio.Event())
