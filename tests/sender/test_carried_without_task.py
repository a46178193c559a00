"""A request carried without a task of its own (the submitter sends at once) ends exactly as
one carried by its task: the same events, counters, commits and guard state, whatever the
request and whatever the provider answers first, and when shutdown comes in the middle.

The same records run twice through the Sender with plain fakes: once with the fake submitter
offering to send at once (:meth:`FakeSubmitter.ready`, what the SMPP bind does when its window
has room), once without (every submit awaited in the record's task).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.kafka.records import Partition, Record
from gateway.provider.codes import SMPP_DUPLICATE_STATUS
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import (
    PermanentRejectError,
    ResponseTimeoutError,
    TemporaryRejectError,
    ThrottledError,
    error_for_status,
)
from gateway.smpp.pdu import SubmitSm
from tests.sender.fakes import Answer, record
from tests.sender.test_sender_service import FAST, TOPICS, Harness, send_request

LONG = "x" * 200  # two parts

FIRST_ANSWERS = ("ok", "throttled", "retriable", "permanent", "timeout", "duplicate")
KINDS = ("usual", "usual", "usual", "long", "two", "invalid", "same_id", "same_message")


def _error(first: str) -> BaseException | None:
    return {
        "ok": None,
        "throttled": ThrottledError(CommandStatus.ESME_RTHROTTLED),
        "retriable": TemporaryRejectError(CommandStatus.ESME_RSYSERR),
        "permanent": PermanentRejectError(CommandStatus.ESME_RINVDSTADR),
        "timeout": ResponseTimeoutError("no response to SubmitSm"),
        "duplicate": error_for_status(SMPP_DUPLICATE_STATUS),
    }[first]


@dataclass(frozen=True)
class Spec:
    kind: str
    key: bytes | None
    urgent: bool
    replay: bool
    first: str


SPECS = st.lists(
    st.builds(
        Spec,
        st.sampled_from(KINDS),
        st.sampled_from([None, b"a", b"b"]),
        st.booleans(),
        st.booleans(),
        st.sampled_from(FIRST_ANSWERS),
    ),
    min_size=1,
    max_size=10,
)


def _records(specs: list[Spec]) -> tuple[list[Record], dict[str, list[Answer]]]:
    records: list[Record] = []
    script: dict[str, list[Answer]] = {}
    for i, spec in enumerate(specs):
        phone = f"7999{i:07d}"
        request_id = f"r{i}"
        text = "Hello"
        if spec.kind == "same_id" and i:
            request_id = f"r{i - 1}"
        if spec.kind == "same_message" and i:
            phone = f"7999{i - 1:07d}"
        recipients = [phone, f"7998{i:07d}"] if spec.kind == "two" else [phone]
        if spec.kind == "long":
            text = LONG
        value = (
            b'{"schema": "smsc.send-request/1"}'
            if spec.kind == "invalid"
            else send_request(request_id, recipients, text=text)
        )
        topic = TOPICS.send_priority if spec.urgent else TOPICS.send
        records.append(record(value, offset=i, key=spec.key, topic=topic, replay=spec.replay))
        script.setdefault(phone, []).append(Answer(phone[-4:], error=_error(spec.first)))
    return records, script


def _default(pdu: SubmitSm) -> Answer:
    return Answer(pdu.destination_addr[-4:])


@dataclass
class Observed:
    published: list[tuple[str, bytes, bytes]]
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    committed: dict[Partition, int | None]
    guards: tuple[list[int], list[str]]
    direct_submits: int


def _counters(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    counted: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for metric in h.metrics.registry.collect():
        if metric.type != "counter":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total") and not sample.name.startswith("process_"):
                counted[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return counted


async def _run(
    specs: list[Spec], *, direct: bool, shutdown_midway: bool, unanswered: bool = False
) -> Observed:
    records, script = _records(specs)
    answers_held = asyncio.Event()
    if shutdown_midway or unanswered:
        for answers in script.values():
            answers[0] = Answer(answers[0].message_id, answers[0].error, answers_held)
    # Unanswered: the first submits get no answer before the drain deadline.
    settings_ = dataclasses.replace(FAST, drain_timeout_seconds=0.1) if unanswered else FAST
    h = Harness(records, script, default=_default, settings=settings_)
    h.submitter.direct = direct
    if shutdown_midway or unanswered:
        async with h:
            await h.until(lambda: h.source.exhausted and h.urgent_source.exhausted)
            await asyncio.sleep(0.02)  # every record that may submit has done so
            h.sender._stop()
            if not unanswered:
                await asyncio.sleep(0.01)
                answers_held.set()
        answers_held.set()
        assert h.exposure.used == 0
        assert not h.sender._running
    else:
        await h.run_until_results(
            len(
                {
                    f"r{i - 1}" if s.kind == "same_id" and i else f"r{i}"
                    for i, s in enumerate(specs)
                    if s.kind != "invalid"
                }
            ),
            dead_letters=sum(1 for s in specs if s.kind == "invalid"),
        )
    assert h.sender.bulk._unbegun == h.sender.urgent._unbegun == 0
    guards: Any = h.sender._dispatch.submission._guards
    partitions = {Partition(r.topic, r.partition) for r in records}
    return Observed(
        sorted((p.topic, p.key or b"", p.value) for p in h.publisher.published),
        _counters(h),
        {p: h.committed(p) for p in partitions},
        (sorted(guards._recent), sorted(guards._runs)),
        h.submitter.direct_submits,
    )


async def _both(specs: list[Spec], shutdown_midway: bool, unanswered: bool = False) -> None:
    carried = await _run(specs, direct=True, shutdown_midway=shutdown_midway, unanswered=unanswered)
    tasked = await _run(specs, direct=False, shutdown_midway=shutdown_midway, unanswered=unanswered)
    assert tasked.direct_submits == 0
    # Nothing before it, no urgent request holding the bulk lane back: carried so.
    if specs[0].kind == "usual" and not any(spec.urgent for spec in specs):
        assert carried.direct_submits
    assert carried.published == tasked.published
    assert carried.counters == tasked.counters
    assert carried.committed == tasked.committed
    assert carried.guards == tasked.guards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS, st.booleans())
def test_carried_without_a_task_ends_as_in_its_task(specs: list[Spec], midway: bool) -> None:
    asyncio.run(_both(specs, midway))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_unanswered_at_the_drain_deadline_as_in_its_task(specs: list[Spec]) -> None:
    asyncio.run(_both(specs, False, unanswered=True))


async def test_the_usual_request_is_carried_without_a_task() -> None:
    h = Harness([record(send_request("r1"), offset=0)], default=_default)
    created: list[object] = []
    lane = h.sender.bulk
    task_for = lane._task_for

    def counting(*args: Any) -> asyncio.Task[None]:
        created.append(args)
        return task_for(*args)

    lane._task_for = counting  # type: ignore[method-assign,assignment]
    await h.run_until_results(1)
    assert h.result("r1")["outcome"] == "accepted"
    assert h.submitter.direct_submits == 1
    assert created == []


async def test_an_error_answer_goes_on_in_a_task_from_where_it_stood() -> None:
    throttled = ThrottledError(CommandStatus.ESME_RTHROTTLED)
    h = Harness(
        [record(send_request("r1"), offset=0)],
        {"79991234567": [Answer(error=throttled)]},
        default=_default,
    )
    await h.run_until_results(1)
    result = h.result("r1")
    assert result["outcome"] == "accepted"
    assert result["attempts"] == 2
    assert h.submitter.direct_submits == 1
    assert len(h.submitter.pdus) == 2
