"""The Sender pipeline with plain fakes for Kafka and the provider.

``Sender.run(stop)`` is driven until the fake sources (bulk and urgent lane) are exhausted and
the expected events were published; then ``stop`` is set and the run must end by itself.
Ordering (publish before commit, commit only past contiguous finished records) is read from
the fakes' shared timeline, never from timing. The rate gate, the provider guards and the
known outcomes are the real (pure) objects, set up so they never hold a test back.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gateway.compose.common import Composer
from gateway.kafka.records import Partition, Record
from gateway.metrics import Metrics
from gateway.roles.sender import bind_profile
from gateway.sender.dispatch import Dispatch
from gateway.sender.exposure import Exposure
from gateway.sender.guards import ProviderGuards
from gateway.sender.outcomes import KnownOutcomes
from gateway.sender.pacing import SubmitGate
from gateway.sender.ratelimit import AdaptiveRate
from gateway.sender.service import Sender
from gateway.sender.submission import Submission
from gateway.settings import SenderSettings, SmppSettings, TopicSettings
from gateway.settings.composition import CompositionSettings
from gateway.settings.sender import GuardSettings, RateSettings
from gateway.shutdown import Shutdown
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import (
    ConnectionClosedError,
    PermanentRejectError,
    TemporaryRejectError,
    ThrottledError,
)
from gateway.smpp.pdu import SubmitSm
from tests.eventcheck import validate_event
from tests.sender.fakes import (
    Answer,
    FakePublisher,
    FakeSource,
    FakeSubmitter,
    Timeline,
    record,
)

TOPICS = TopicSettings()
BULK = Partition(TOPICS.send, 0)
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PHONE = "79991234567"
SMPP = SmppSettings(system_id="login", source_addr="SMSC.RU")
FAST = SenderSettings(
    max_in_flight=50,
    fetch_max_records=50,
    commit_interval_seconds=0.002,
    retry_initial_seconds=0.001,
    retry_max_seconds=0.004,
    give_up_after_seconds=0.05,
    drain_timeout_seconds=2.0,
)
# Far above anything a test sends, so the gate never makes a test wait.
UNLIMITED = RateSettings(per_second=1_000_000.0, burst_seconds=1.0)


def send_request(request_id: str, recipients: Iterable[str] = (PHONE,), **fields: Any) -> bytes:
    doc: dict[str, Any] = {
        "schema": "smsc.send-request/1",
        "request_id": request_id,
        "recipients": list(recipients),
        "text": "Hello",
    }
    doc.update(fields)
    validate_event(doc)  # what the client service produces is a valid request
    return orjson.dumps(doc)


def _publishing(key: bytes) -> Callable[[tuple[Any, ...]], bool]:
    """Matches the timeline entry of publishing an event keyed ``key``."""
    return lambda entry: entry[0] == "publish" and entry[2] == key


class Harness:
    """A Sender wired to fakes, run as a task until a condition holds."""

    def __init__(
        self,
        records: Iterable[Record],
        script: Mapping[str, Iterable[Answer]] | None = None,
        *,
        default: Callable[[SubmitSm], Answer] | None = None,
        settings: SenderSettings = FAST,
        shutdown: Shutdown | None = None,
        rate: RateSettings = UNLIMITED,
        exposure_limit: int = 64,
    ) -> None:
        self.timeline = Timeline()
        records = list(records)
        self.source = FakeSource(
            [r for r in records if r.topic != TOPICS.send_priority], self.timeline
        )
        self.urgent_source = FakeSource(
            [r for r in records if r.topic == TOPICS.send_priority], self.timeline
        )
        self.publisher = FakePublisher(self.timeline)
        self.submitter = FakeSubmitter(script, default=default, timeline=self.timeline)
        self.metrics = Metrics()
        self.settings = settings
        loop = asyncio.get_running_loop()
        submission = Submission(
            submitter=self.submitter,
            gate=SubmitGate(AdaptiveRate(rate, loop.time()), loop.time),
            guards=ProviderGuards(GuardSettings()),
            settings=settings,
            metrics=self.metrics,
            account="login",
            clock=loop.time,
        )
        self.exposure = Exposure(exposure_limit)
        dispatch = Dispatch(
            submission=submission,
            exposure=self.exposure,
            composer=Composer(CompositionSettings(), bind_profile(SMPP)),
        )
        self.sender = Sender(
            bulk=self.source,
            urgent=self.urgent_source,
            publisher=self.publisher,
            outcomes=KnownOutcomes(settings.idempotency_window_seconds),
            dispatch=dispatch,
            settings=settings,
            topics=TOPICS,
            metrics=self.metrics,
            clock=lambda: NOW,
            shutdown=shutdown,
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.sender.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.stop.set()
        async with asyncio.timeout(10):
            await self.task

    async def until(
        self, condition: Callable[[], bool], what: str = "the condition", within: float = 5.0
    ) -> None:
        assert self.task is not None
        async with asyncio.timeout(within):
            while not condition():
                if self.task.done():
                    self.task.result()  # raises what ended the run
                    raise AssertionError(f"the sender stopped before {what}")
                await asyncio.sleep(0.001)

    async def run_until_results(self, count: int, dead_letters: int = 0) -> None:
        """Run until every record was fetched and the events were published, then stop."""
        async with self:
            await self.until(
                lambda: (
                    self.source.exhausted
                    and self.urgent_source.exhausted
                    and len(self.results) >= count
                    and len(self.dead_letters) >= dead_letters
                ),
                f"{count} results and {dead_letters} dead letters",
            )
        assert len(self.results) == count
        assert len(self.dead_letters) == dead_letters

    async def idle(self, commit_rounds: int = 10) -> None:
        """Let the commit loop run several times."""
        await asyncio.sleep(self.settings.commit_interval_seconds * commit_rounds)

    def committed(self, partition: Partition) -> int | None:
        """The last offset committed for ``partition`` by either lane."""
        for source in (self.source, self.urgent_source):
            offset = source.committed(partition)
            if offset is not None:
                return offset
        return None

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.publisher.on(TOPICS.send_results)

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return self.publisher.on(TOPICS.dead_letter)

    def result(self, request_id: str) -> dict[str, Any]:
        (found,) = [r for r in self.results if r["request_id"] == request_id]
        return found

    def results_reach(self, count: int) -> Callable[[], bool]:
        """A condition for :meth:`until`: ``count`` results were published."""
        return lambda: len(self.results) == count

    def assert_committed_only_after_publishing(self, owners: Mapping[int, bytes]) -> None:
        """Each commit of BULK comes after the results of every offset it covers.

        ``owners`` maps offset to the key of the event that settles the record.
        """
        for position, entry in enumerate(self.timeline.entries):
            if entry[0] != "commit" or BULK not in entry[1]:
                continue
            for offset in range(entry[1][BULK]):
                published = self.timeline.index(_publishing(owners[offset]))
                assert published < position, (offset, self.timeline.entries)


# -- the happy path ------------------------------------------------------------------------


async def test_valid_request_is_accepted_published_then_committed() -> None:
    value = send_request("r1", ["+7 (999) 123-45-67"], tags={"order": "A-17"})
    h = Harness([record(value, offset=0)], {PHONE: [Answer("000123")]})
    await h.run_until_results(1)

    (result,) = h.results
    assert result["request_id"] == "r1"
    assert result["outcome"] == "accepted"
    assert result["transport"] == "smpp"
    assert result["attempts"] == 1
    assert result["tags"] == {"order": "A-17"}
    assert result["received_at"] == "2030-01-01T12:00:00.000Z"
    assert result["recipients"] == [
        {"phone": PHONE, "status": "accepted", "message_ids": ["123"], "parts": 1}
    ]
    assert h.publisher.published[0].key == b"r1"
    (pdu,) = h.submitter.pdus
    assert pdu.destination_addr == PHONE
    assert pdu.short_message == b"Hello"
    assert pdu.registered_delivery == 1
    assert h.source.committed(BULK) == 1
    submitted = h.timeline.index(lambda e: e == ("submit-ok", PHONE))
    published = h.timeline.index(lambda e: e[0] == "publish" and e[2] == b"r1")
    committed = h.timeline.index(lambda e: e[0] == "commit" and e[1].get(BULK) == 1)
    assert submitted < published < committed
    h.assert_committed_only_after_publishing({0: b"r1"})


@pytest.mark.parametrize(("given", "normal"), [("0x1A", "26"), ("  42 ", "42"), ("abc-1", "abc-1")])
async def test_provider_message_id_is_normalized(given: str, normal: str) -> None:
    h = Harness([record(send_request("r1"), offset=0)], {PHONE: [Answer(given)]})
    await h.run_until_results(1)
    assert h.result("r1")["recipients"][0]["message_ids"] == [normal]


async def test_commit_waits_for_the_slow_first_record() -> None:
    slow, fast, elsewhere = "79990000001", "79990000002", "79990000003"
    gate = asyncio.Event()
    other = Partition(TOPICS.send, 1)
    h = Harness(
        [
            record(send_request("slow", [slow]), offset=0),
            record(send_request("fast", [fast]), offset=1),
            record(send_request("elsewhere", [elsewhere]), offset=0, partition=1),
        ],
        {slow: [Answer("1", gate=gate)], fast: [Answer("2")], elsewhere: [Answer("3")]},
    )
    async with h:
        await h.until(lambda: len(h.results) == 2, "the fast results")
        await h.until(lambda: h.source.committed(other) == 1, "the other partition's commit")
        await h.idle()
        assert {r["request_id"] for r in h.results} == {"fast", "elsewhere"}
        assert h.source.committed(BULK) is None  # offset 1 is done, offset 0 is not
        gate.set()
        await h.until(lambda: h.source.committed(BULK) == 2, "the commit past both")
    assert [c[BULK] for c in h.source.commits if BULK in c] == [2]
    h.assert_committed_only_after_publishing({0: b"slow", 1: b"fast"})


async def test_many_records_finishing_in_reverse_order() -> None:
    gates = [asyncio.Event() for _ in range(8)]
    phones = [f"7999000{n:04d}" for n in range(8)]
    h = Harness(
        [record(send_request(f"r{n}", [phones[n]]), offset=n) for n in range(8)],
        {phones[n]: [Answer(str(n), gate=gates[n])] for n in range(8)},
    )
    async with h:
        await h.until(lambda: len(h.submitter.pdus) == 8, "all submits in flight")
        for n in reversed(range(8)):
            gates[n].set()
            await h.until(h.results_reach(8 - n), f"result of r{n}")
            await h.idle(3)
        await h.until(lambda: h.source.committed(BULK) == 8, "the final commit")
    h.assert_committed_only_after_publishing({n: f"r{n}".encode() for n in range(8)})


# -- Kafka trouble ---------------------------------------------------------------------------


async def test_publisher_down_holds_the_commit_until_it_recovers() -> None:
    h = Harness([record(send_request("r1"), offset=0)])
    h.publisher.failing = True
    async with h:
        await h.until(lambda: h.publisher.failures >= 3, "publish retries")
        await h.idle()
        assert h.source.commits == []
        assert h.results == []
        h.publisher.failing = False
        await h.until(lambda: h.source.committed(BULK) == 1, "the commit")
    assert len(h.results) == 1
    assert h.results[0]["outcome"] == "accepted"
    assert len(h.submitter.pdus) == 1  # publishing again does not submit again
    h.assert_committed_only_after_publishing({0: b"r1"})


async def test_failed_commit_is_tried_again() -> None:
    h = Harness([record(send_request("r1"), offset=0)])
    h.source.failing = True
    async with h:
        await h.until(lambda: len(h.results) == 1, "the result")
        await h.idle()
        h.source.failing = False
        await h.until(lambda: h.source.committed(BULK) == 1, "the commit")


async def test_outcome_not_stored_before_shutdown_stays_uncommitted() -> None:
    settings = SenderSettings(
        commit_interval_seconds=0.002,
        retry_initial_seconds=0.001,
        retry_max_seconds=0.004,
        drain_timeout_seconds=0.05,
    )
    h = Harness([record(send_request("r1"), offset=0)], settings=settings)
    h.publisher.failing = True
    async with h:
        await h.until(lambda: h.publisher.failures >= 2, "publish retries")
    assert h.source.commits == []
    assert h.results == []


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"{oops", "invalid_json"),
        (None, "empty_value"),
        (b'{"schema": "smsc.send-request/1", "request_id": ""}', "invalid_request_id"),
    ],
)
async def test_unreadable_request_goes_to_dead_letters_only(value: bytes | None, code: str) -> None:
    h = Harness([record(value, offset=7, key=b"k1")])
    await h.run_until_results(0, dead_letters=1)
    (dead,) = h.dead_letters
    assert dead["role"] == "sender"
    assert dead["origin"] == {"kind": "kafka", "topic": TOPICS.send, "partition": 0, "offset": 7}
    assert dead["reason"]["code"] == code
    assert dead["key_base64"] == base64.b64encode(b"k1").decode()
    expected = None if value is None else base64.b64encode(value).decode()
    assert dead["value_base64"] == expected
    assert h.publisher.published[0].key == b"k1"  # the original key
    assert h.submitter.pdus == []
    assert h.source.committed(BULK) == 8


async def test_invalid_request_with_readable_id_is_dead_lettered_and_rejected() -> None:
    raw = orjson.dumps(
        {"schema": "smsc.send-request/1", "request_id": "r9", "recipients": ["no"], "text": "x"}
    )
    h = Harness([record(raw, offset=0, key=b"k9")])
    await h.run_until_results(1, dead_letters=1)
    (dead,) = h.dead_letters
    assert dead["reason"]["code"] == "invalid_phone"
    assert base64.b64decode(dead["value_base64"]) == raw
    result = h.result("r9")
    assert result["outcome"] == "rejected"
    assert result["transport"] == "none"
    assert result["recipients"] == []
    assert result["error"]["code"] == "invalid_phone"
    assert result["error"]["message"]
    keys = [p.key for p in h.publisher.published]
    assert keys == [b"k9", b"r9"]
    assert h.submitter.pdus == []
    assert h.source.committed(BULK) == 1
    committed = h.timeline.index(lambda e: e[0] == "commit")
    assert h.timeline.index(lambda e: e[0] == "publish" and e[2] == b"r9") < committed
    assert h.timeline.index(lambda e: e[0] == "publish" and e[2] == b"k9") < committed


async def test_bad_record_does_not_block_the_partition() -> None:
    h = Harness(
        [
            record(send_request("r0"), offset=0),
            record(b"garbage", offset=1),
            record(send_request("r2", ["79990000002"]), offset=2),
        ]
    )
    await h.run_until_results(2, dead_letters=1)
    assert {r["request_id"]: r["outcome"] for r in h.results} == {
        "r0": "accepted",
        "r2": "accepted",
    }
    assert h.source.committed(BULK) == 3


async def test_a_request_that_cannot_be_composed_is_rejected_without_submitting() -> None:
    # A Telegram code must be 4 to 8 digits (SMPP seed, "Sending a message to Telegram").
    request = send_request("r1", channel="telegram_code", text="12", tags={"t": "v"})
    h = Harness([record(request, offset=0)])
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "rejected"
    assert result["error"]["code"] == "invalid_telegram_code"
    assert result["transport"] == "none"
    assert result["tags"] == {"t": "v"}
    assert h.submitter.pdus == []
    assert h.dead_letters == []


@pytest.mark.parametrize(
    "schedule_at",
    [
        "9999-12-31T23:59:59-14:00",  # not a time in UTC
        "2100-01-01T00:00:00Z",  # past what SMPP's two-digit year can say
    ],
)
async def test_a_schedule_that_cannot_be_sent_is_rejected_not_failed(schedule_at: str) -> None:
    h = Harness([record(send_request("r1", schedule_at=schedule_at), offset=0)])
    await h.run_until_results(1, dead_letters=int(schedule_at.startswith("9999")))
    result = h.result("r1")
    assert result["outcome"] == "rejected"
    assert result["error"]["code"] == "invalid_schedule"
    assert h.submitter.pdus == []
    assert h.source.committed(BULK) == 1


@pytest.mark.parametrize(
    "value",
    [
        send_request("r1", comment="для отчёта"),
        orjson.dumps(
            {
                "schema": "smsc.send-request/1",
                "request_id": "r1",
                "recipients": [PHONE],
                "text": "x",
                "channel": ["sms"],
            }
        ),
    ],
    ids=["cyrillic-comment", "list-channel"],
)
async def test_request_the_sender_cannot_compose_still_gets_an_outcome(value: bytes) -> None:
    h = Harness([record(value, offset=0)])
    async with h:
        await h.until(lambda: h.committed(BULK) == 1, "the record to be settled", within=1.0)
    assert len(h.results) + len(h.dead_letters) >= 1


# -- provider answers ------------------------------------------------------------------------


async def test_permanent_reject_is_rejected_with_the_command_status() -> None:
    error = PermanentRejectError(CommandStatus.ESME_RINVDSTADR)
    h = Harness([record(send_request("r1"), offset=0)], {PHONE: [Answer(error=error)]})
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "rejected"
    (recipient,) = result["recipients"]
    assert recipient["status"] == "rejected"
    assert recipient["message_ids"] == []
    assert recipient["error"]["code"] == "esme_rinvdstadr"
    assert recipient["error"]["command_status"] == CommandStatus.ESME_RINVDSTADR.value == 0x0B
    assert len(h.submitter.pdus) == 1  # a permanent error is not retried
    assert h.source.committed(BULK) == 1


async def test_throttled_once_then_accepted() -> None:
    throttled = ThrottledError(CommandStatus.ESME_RTHROTTLED)
    h = Harness(
        [record(send_request("r1"), offset=0)],
        {PHONE: [Answer(error=throttled), Answer("555")]},
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    assert result["attempts"] == 2
    assert result["recipients"][0]["message_ids"] == ["555"]
    first, second = h.submitter.pdus
    assert first == second
    retries = h.metrics.registry.get_sample_value(
        "smsc_send_retries_total", {"reason": "ESME_RTHROTTLED"}
    )
    assert retries == 1


@pytest.mark.parametrize(
    ("error", "code", "command_status"),
    [
        (TemporaryRejectError(CommandStatus.ESME_RSYSERR), "esme_rsyserr", 0x08),
        (ConnectionClosedError("link lost"), "retries_exhausted", None),
    ],
)
async def test_temporary_errors_beyond_the_give_up_time_fail(
    error: Exception, code: str, command_status: int | None
) -> None:
    h = Harness([record(send_request("r1"), offset=0)], default=lambda pdu: Answer(error=error))
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "failed"
    assert len(h.submitter.pdus) >= 2  # retried until give_up_after_seconds
    (recipient,) = result["recipients"]
    assert recipient["status"] == "failed"
    assert recipient["error"]["code"] == code
    assert recipient["error"].get("command_status") == command_status
    assert h.source.committed(BULK) == 1


async def test_a_temporary_error_is_retried_once_even_with_no_time_to_give_up() -> None:
    error = TemporaryRejectError(CommandStatus.ESME_RSYSERR)
    settings = dataclasses.replace(FAST, give_up_after_seconds=0.0)
    h = Harness(
        [record(send_request("r1"), offset=0)],
        default=lambda pdu: Answer(error=error),
        settings=settings,
    )
    await h.run_until_results(1)
    assert h.result("r1")["outcome"] == "failed"
    assert len(h.submitter.pdus) == 2  # the give-up time counts from the first retry


@pytest.mark.parametrize(
    "error",
    [
        PermanentRejectError(CommandStatus.ESME_RINVDSTADR),
        TemporaryRejectError(CommandStatus.ESME_RSYSERR),
    ],
    ids=["permanent", "temporary"],
)
async def test_result_counts_every_attempt(error: Exception) -> None:
    h = Harness([record(send_request("r1"), offset=0)], default=lambda pdu: Answer(error=error))
    await h.run_until_results(1)
    assert h.result("r1")["attempts"] == len(h.submitter.pdus) >= 1


async def test_throttling_never_fails_a_message() -> None:
    throttled = [Answer(error=ThrottledError(CommandStatus.ESME_RTHROTTLED)) for _ in range(3)]
    settings = dataclasses.replace(FAST, give_up_after_seconds=0.0)
    h = Harness(
        [record(send_request("r1"), offset=0)],
        {PHONE: [*throttled, Answer(error=ThrottledError(CommandStatus.ESME_RMSGQFUL))]},
        settings=settings,
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    assert result["attempts"] == 5
    throttles = h.metrics.registry.get_sample_value(
        "smsc_rate_throttled_total", {"account": "login"}
    )
    assert throttles == 4


async def test_same_key_reaches_the_provider_in_order() -> None:
    first, second = "79990000001", "79990000002"
    throttled = ThrottledError(CommandStatus.ESME_RTHROTTLED)
    h = Harness(
        [
            record(send_request("r1", [first]), offset=0, key=b"k"),
            record(send_request("r2", [second]), offset=1, key=b"k"),
        ],
        {first: [Answer(error=throttled), Answer(error=throttled), Answer("1")]},
    )
    await h.run_until_results(2)
    assert h.timeline.index(lambda e: e == ("submit-ok", first)) < h.timeline.index(
        lambda e: e == ("submit", second)
    )


async def test_repeated_request_id_is_sent_once() -> None:
    h = Harness(
        [
            record(send_request("same"), offset=0),
            record(send_request("same"), offset=1),
        ]
    )
    async with h:
        await h.until(lambda: h.committed(BULK) == 2, "both records to be settled")
    assert len(h.results) == 1
    assert len(h.submitter.pdus) == 1
    skipped = h.metrics.registry.get_sample_value(
        "smsc_send_requests_skipped_total", {"reason": "known_outcome"}
    )
    assert skipped == 1


async def test_one_rejected_recipient_of_many() -> None:
    a, b, c = "79990000001", "79990000002", "79990000003"
    bad = PermanentRejectError(CommandStatus.ESME_RINVDSTADR)
    h = Harness(
        [record(send_request("r1", [a, b, c], tags={"k": "v"}), offset=0)],
        {a: [Answer("101")], b: [Answer(error=bad)], c: [Answer("103")]},
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    assert result["tags"] == {"k": "v"}
    assert [(r["phone"], r["status"], r["message_ids"]) for r in result["recipients"]] == [
        (a, "accepted", ["101"]),
        (b, "rejected", []),
        (c, "accepted", ["103"]),
    ]
    assert result["recipients"][1]["error"]["command_status"] == 0x0B
    assert sorted(p.destination_addr for p in h.submitter.pdus) == [a, b, c]


async def test_every_recipient_rejected_or_failed() -> None:
    a, b = "79990000001", "79990000002"
    h = Harness(
        [record(send_request("r1", [a, b]), offset=0)],
        {
            a: [Answer(error=PermanentRejectError(CommandStatus.ESME_RINVDSTADR))],
            b: [Answer(error=PermanentRejectError(CommandStatus.ESME_RINVSRCADR))],
        },
    )
    await h.run_until_results(1)
    assert h.result("r1")["outcome"] == "rejected"


async def test_priority_topic_sets_priority_flag() -> None:
    urgent, bulk = "79990000001", "79990000002"
    h = Harness(
        [
            record(send_request("urgent", [urgent]), offset=0, topic=TOPICS.send_priority),
            record(send_request("bulk", [bulk]), offset=0, topic=TOPICS.send),
        ]
    )
    await h.run_until_results(2)
    assert [p.priority_flag for p in h.submitter.to(urgent)] == [1]
    assert [p.priority_flag for p in h.submitter.to(bulk)] == [0]
    flags = dict(
        zip((p.destination_addr for p in h.submitter.pdus), h.submitter.urgent, strict=True)
    )
    assert flags == {urgent: True, bulk: False}
    assert h.urgent_source.committed(Partition(TOPICS.send_priority, 0)) == 1
    assert h.source.committed(BULK) == 1


async def test_request_options_reach_the_pdu() -> None:
    value = send_request(
        "r1",
        text="Привет",
        validity_seconds=3600,
        registered_delivery=False,
        sender_id="Shop",
        schedule_at="2030-01-02T00:00:00Z",
    )
    h = Harness([record(value, offset=0)])
    await h.run_until_results(1)
    (pdu,) = h.submitter.pdus
    assert pdu.data_coding == 8
    assert pdu.short_message == "Привет".encode("utf-16-be")
    assert pdu.validity_period == "000000010000000R"
    assert pdu.registered_delivery == 0
    assert pdu.source_addr == "Shop"
    assert pdu.schedule_delivery_time == "300102000000000+"


async def test_metrics_count_requests_and_results() -> None:
    h = Harness([record(send_request("r1"), offset=0), record(b"x", offset=1)])
    await h.run_until_results(1, dead_letters=1)
    sample = h.metrics.registry.get_sample_value
    assert sample("smsc_send_requests_total", {"topic": TOPICS.send}) == 2
    assert sample("smsc_send_results_total", {"outcome": "accepted"}) == 1
    assert sample("smsc_dead_letters_total", {"reason": "invalid_json"}) == 1
