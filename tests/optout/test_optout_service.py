"""The opt-out's pieces: keyword matching, the ledger, the event, and the service calling the
simulator's phones.php (its Kafka side is in test_optout_e2e.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from gateway.account.contacts import BlacklistType
from gateway.errors import ConfigError, KafkaUnavailableError
from gateway.events.envelope import stable_event_id
from gateway.events.opt_out import OptOut, opt_out_event, opt_out_event_id
from gateway.kafka.records import Record
from gateway.metrics import Metrics
from gateway.optout.keywords import KeywordMatcher, normalised
from gateway.optout.ledger import OptOutLedger
from gateway.optout.metrics import OptOutMetrics
from gateway.optout.service import OptOutService, Topics, read_incoming
from gateway.settings.optout import OptOutSettings
from tests.account.accountkit import account, raw_call
from tests.eventcheck import validate_event

PHONE = "79001234567"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOPICS = Topics("optouts", "dead")


class MemoryPublisher:
    """Keeps what is published; refuses the first ``refuse`` publishes as Kafka down would."""

    def __init__(self, refuse: int = 0) -> None:
        self.records: list[tuple[str, bytes | None, dict[str, object]]] = []
        self.refuse = refuse

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.refuse:
            self.refuse -= 1
            raise KafkaUnavailableError("broker down")
        self.records.append((topic, key, orjson.loads(value)))

    def events(self, topic: str) -> list[dict[str, object]]:
        return [event for t, _, event in self.records if t == topic]


def incoming(text: str, *, phone: str = PHONE, n: int = 1) -> Record:
    event = {
        "schema": "smsc.incoming/1",
        "event_id": stable_event_id("test-incoming", n),
        "occurred_at": "2026-05-01T11:59:00.000Z",
        "source": "smpp",
        "phone": phone,
        "to": "4567",
        "text": text,
        "raw": {},
    }
    return Record("incoming", n % 3, n, phone.encode(), orjson.dumps(event), 0)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def settings(**overrides: object) -> OptOutSettings:
    values: dict[str, object] = {
        "keywords": ("STOP", "СТОП"),
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.2,
    }
    return OptOutSettings(**(values | overrides))  # type: ignore[arg-type]


def test_keywords_match_the_whole_text_whatever_the_case_and_punctuation() -> None:
    matcher = KeywordMatcher(["STOP", "СТОП", "Отписаться"])
    for text in ("STOP", "stop", " Stop! ", "«стоп»", "СТОП.", "ＳＴＯＰ", "\tотписаться\n"):
        assert matcher.match(text) is not None, text
    assert matcher.match("стоп") == "СТОП"
    for text in ("please stop", "STOPPED", "", "   ", "st op", "stop stop"):
        assert matcher.match(text) is None, text
    assert normalised("  -Stop-  ") == "stop"
    assert not KeywordMatcher(["  ", "!"])


def test_settings_refuse_an_unknown_blacklist_type_and_empty_keywords() -> None:
    assert not OptOutSettings().enabled
    with pytest.raises(ConfigError, match="blacklist_type"):
        OptOutSettings(keywords=("STOP",), blacklist_type=3)
    with pytest.raises(ConfigError, match="keywords must not be empty"):
        OptOutSettings(keywords=("STOP", " "))


def test_the_ledger_is_bounded_and_fed_from_opt_out_events() -> None:
    ledger = OptOutLedger(max_entries=2)
    for n in range(3):
        ledger.add(f"e{n}")
    assert "e0" not in ledger
    assert "e1" in ledger
    assert "e2" in ledger
    event = opt_out_event(OptOut(PHONE, "STOP", "e9", "smpp", "4567", 1, 77), NOW)
    ledger.on_record(Record("optouts", 0, 5, None, orjson.dumps(event), 0))
    ledger.on_record(Record("optouts", 0, 6, None, b"not json", 0))
    assert "e9" in ledger
    assert len(ledger) == 2


def test_the_event_is_stable_per_incoming_sms_and_valid_either_way() -> None:
    incoming_id = stable_event_id("x", 1)
    ok = opt_out_event(OptOut(PHONE, "STOP", incoming_id, "webhook", "4567", 1, 12), NOW)
    validate_event(ok)
    assert ok["event_id"] == opt_out_event_id(incoming_id)
    assert ok["outcome"] == "blacklisted"
    assert ok["blacklist"] == {"type": 1, "blocks": "mass", "id": 12}
    failed = opt_out_event(
        OptOut(PHONE, "STOP", incoming_id, "poll", "4567", 0, error=("parameters_error", "bad", 1)),
        NOW,
    )
    validate_event(failed)
    assert failed["event_id"] == ok["event_id"]
    assert failed["error"] == {"code": "parameters_error", "message": "bad"}
    assert failed["error_code"] == 1


def test_what_is_not_an_incoming_event_is_named() -> None:
    assert read_incoming(b"{") == "not JSON"
    assert read_incoming(b'{"schema": "smsc.dlr/1"}') == "not an smsc.incoming/1 event"
    assert "missing" in str(read_incoming(b'{"schema": "smsc.incoming/1", "phone": "1"}'))
    parsed = read_incoming(incoming("STOP").value)
    assert not isinstance(parsed, str)
    assert (parsed.phone, parsed.text, parsed.source) == (PHONE, "STOP", "smpp")


async def test_a_keyword_blacklists_the_phone_once_and_a_replay_is_not_sent_again() -> None:
    async with account() as a:
        registry, publisher, ledger = Metrics(), MemoryPublisher(), OptOutLedger(100)
        metrics = OptOutMetrics(registry)
        service = OptOutService(
            settings(), ledger, a.contacts, publisher, topics=TOPICS, metrics=metrics
        )
        stop = asyncio.Event()
        assert await service.handle(incoming("hello", n=1), stop)
        assert await service.handle(incoming(" Stop! ", n=2), stop)
        assert await service.handle(incoming(" Stop! ", n=2), stop)  # the same SMS again
        assert await service.handle(incoming("стоп", phone="79007654321", n=3), stop)
        book = a.sim.phones.books["gateway"]
        assert sorted(book.blacklist) == ["79001234567", "79007654321"]
        assert {e.type for e in book.blacklist.values()} == {int(BlacklistType.MASS)}
        assert a.sim.stats.requests["phones"] == 2
        events = publisher.events("optouts")
        assert [(e["phone"], e["keyword"], e["outcome"]) for e in events] == [
            (PHONE, "STOP", "blacklisted"),
            ("79007654321", "СТОП", "blacklisted"),
        ]
        assert events[0]["blacklist"] == {
            "type": 1,
            "blocks": "mass",
            "id": book.blacklist[PHONE].entry_id,
        }
        assert [key for t, key, _ in publisher.records] == [PHONE.encode(), b"79007654321"]
        for event in events:
            validate_event(event)
        assert sample(registry, "smsc_optout_total", outcome="replayed") == 1
        assert sample(registry, "smsc_optout_total", outcome="blacklisted") == 2


async def test_provider_refusals_wait_and_retry_or_end_failed() -> None:
    async with account({"window_seconds": 3.0}, limit_window_seconds=3.0) as a:
        registry, publisher = Metrics(), MemoryPublisher(refuse=1)
        metrics = OptOutMetrics(registry)
        service = OptOutService(
            settings(blacklist_type=0), OptOutLedger(100), a.contacts, publisher,
            topics=TOPICS, metrics=metrics,
        )  # fmt: skip
        stop = asyncio.Event()
        for _ in range(3):  # another process used up the minute's identical requests
            await raw_call(a.sim, "phones", add_black="1", phone=PHONE, type="0")
        assert await service.handle(incoming("STOP", n=4), stop)
        assert a.sim.stats.errors[("phones", 9)] >= 1
        assert sample(registry, "smsc_optout_retries_total", reason="provider") >= 1
        assert [e["outcome"] for e in publisher.events("optouts")] == ["blacklisted"]
        assert a.sim.phones.books["gateway"].blacklist[PHONE].type == 0
        assert sample(registry, "smsc_optout_retries_total", reason="kafka") == 1
        assert await service.handle(incoming("STOP", phone="12", n=5), stop)
        failed = publisher.events("optouts")[-1]
        assert failed["outcome"] == "failed"
        assert failed["error_code"] == 1
        assert failed["error"]["code"] == "parameters_error"  # type: ignore[index]
        validate_event(failed)


async def test_a_stop_while_retrying_leaves_the_record_undone() -> None:
    async with account() as a:
        publisher = MemoryPublisher()
        service = OptOutService(
            settings(retry_initial_seconds=5.0, retry_max_seconds=5.0), OptOutLedger(10),
            a.contacts, publisher, topics=TOPICS, metrics=OptOutMetrics(Metrics()),
        )  # fmt: skip
        stop = asyncio.Event()
        a.sim.faults.fail_requests(503, count=100, scripts=("phones",))
        handling = asyncio.create_task(service.handle(incoming("STOP", n=6), stop))
        await asyncio.sleep(0.3)
        stop.set()
        assert await asyncio.wait_for(handling, 2) is False
        assert publisher.records == []


async def test_what_is_not_an_incoming_event_goes_to_the_dead_letter_topic() -> None:
    async with account() as a:
        publisher = MemoryPublisher()
        service = OptOutService(
            settings(), OptOutLedger(10), a.contacts, publisher, topics=TOPICS,
            metrics=OptOutMetrics(Metrics()),
        )  # fmt: skip
        bad = Record("incoming", 1, 42, b"k", b"garbage", 0)
        assert await service.handle(bad, asyncio.Event())
        [dead] = publisher.events("dead")
        validate_event(dead)
        assert dead["reason"] == {"code": "optout_invalid_incoming", "message": "opt-out: not JSON"}
        assert dead["origin"] == {
            "kind": "kafka",
            "topic": "incoming",
            "partition": 1,
            "offset": 42,
        }
