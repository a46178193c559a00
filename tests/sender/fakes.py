"""Plain fakes for the seams the domain uses: RecordSource, Publisher and Submitter.

They share a :class:`Timeline` so tests can assert the order of publishes, commits and
answers without timing. Nothing here patches anything.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import GatewayError, KafkaUnavailableError
from gateway.kafka.records import Partition, Publisher, Record
from gateway.smpp.pdu import SubmitSm, SubmitSmResp
from tests.eventcheck import validate_event


@dataclass
class Timeline:
    """What happened, in order: ("publish", topic, key), ("commit", offsets), ..."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *entry: Any) -> None:
        self.entries.append(entry)

    def index(self, predicate: Callable[[tuple[Any, ...]], bool]) -> int:
        for position, entry in enumerate(self.entries):
            if predicate(entry):
                return position
        raise AssertionError(f"nothing in the timeline matches; timeline: {self.entries}")


def record(
    value: bytes | None,
    *,
    offset: int,
    topic: str = "smsc.send.v1",
    partition: int = 0,
    key: bytes | None = None,
    replay: bool = False,
) -> Record:
    return Record(
        topic, partition, offset, key, value, timestamp_ms=1_900_000_000_000, replay=replay
    )


class FakeSource:
    """Hands out its records once, then nothing; records every commit."""

    def __init__(self, records: Iterable[Record], timeline: Timeline | None = None) -> None:
        self._pending: deque[Record] = deque(records)
        self.timeline = timeline or Timeline()
        self.commits: list[dict[Partition, int]] = []
        self.failing = False
        self.commit_gate: asyncio.Event | None = None  # when set: commits wait for it
        self.claims: list[int] = []  # offsets claimed, in order
        self.refusing_claims = False

    @property
    def exhausted(self) -> bool:
        return not self._pending

    def deliver(self, records: Iterable[Record]) -> None:
        """Hand out ``records`` too (a partition assigned again, read from its commit)."""
        self._pending.extend(records)

    async def fetch(self, timeout_seconds: float, max_records: int) -> list[Record]:
        if not self._pending:
            await asyncio.sleep(min(timeout_seconds, 0.002))
            return []
        await asyncio.sleep(0)
        count = min(max_records, len(self._pending))
        return [self._pending.popleft() for _ in range(count)]

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self.commit_gate is not None:
            await self.commit_gate.wait()
        await asyncio.sleep(0)
        if self.failing:
            raise KafkaUnavailableError("commit not acknowledged")
        self.commits.append(dict(offsets))
        self.timeline.add("commit", dict(offsets))

    async def claim(self, records: Sequence[Record]) -> list[Record]:
        await asyncio.sleep(0)
        if self.refusing_claims:
            raise KafkaUnavailableError("claim not acknowledged")
        self.claims.extend(r.offset for r in records)
        self.timeline.add("claim", [r.offset for r in records])
        return list(records)

    def committed(self, partition: Partition) -> int | None:
        """The last offset committed for ``partition``."""
        for commit in reversed(self.commits):
            if partition in commit:
                return commit[partition]
        return None


@dataclass(frozen=True)
class Published:
    topic: str
    key: bytes | None
    value: bytes

    @property
    def event(self) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(self.value)
        return decoded


Acked = Callable[[GatewayError | None], None]


class TaskPerRecord:
    """A plain :class:`Publisher` taking records as the gateway's publishers do
    (``enqueue``): each ``publish`` in a task of its own, ``acked`` with its outcome."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        task = asyncio.create_task(self._publish(topic, key, value, acked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        try:
            await self._publisher.publish(topic, key, value)
        except GatewayError as exc:
            acked(exc)
            return
        acked(None)


class FakePublisher:
    """Stores what it is given; raises KafkaUnavailableError while ``failing``.

    Every stored event is validated against the schema it names.
    """

    def __init__(self, timeline: Timeline | None = None) -> None:
        self.timeline = timeline or Timeline()
        self.published: list[Published] = []
        self.failing = False
        self.failures = 0
        self.gate: asyncio.Event | None = None  # when set: publish waits for it
        self._each_in_a_task = TaskPerRecord(self)
        self._offered_tasks: set[asyncio.Task[None]] = set()

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.failing:
            self.failures += 1
            self.timeline.add("publish-failed", topic, key)
            raise KafkaUnavailableError("not acknowledged")
        item = Published(topic, key, value)
        validate_event(item.event)
        self.published.append(item)
        self.timeline.add("publish", topic, key)

    async def enqueue(self, topic: str, key: bytes | None, value: bytes, acked: Acked) -> None:
        """:meth:`publish` in a task of its own, ``acked`` with its outcome."""
        await self._each_in_a_task.enqueue(topic, key, value, acked)

    def offer(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        settle: Callable[[GatewayError | None, float], None],
    ) -> None:
        """As :meth:`publish`, with the answer given to ``settle``."""
        task = asyncio.create_task(self._offered(topic, key, value, settle))
        self._offered_tasks.add(task)
        task.add_done_callback(self._offered_tasks.discard)

    async def _offered(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        settle: Callable[[GatewayError | None, float], None],
    ) -> None:
        try:
            await self.publish(topic, key, value)
        except GatewayError as exc:
            settle(exc, 0.0)
            return
        settle(None, 0.0)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [p.event for p in self.published if p.topic == topic]


@dataclass
class Answer:
    """A scripted submit answer: a message id (ESME_ROK), or an exception to raise.

    ``gate`` makes the answer wait until the test opens it.
    """

    message_id: str = "1"
    error: BaseException | None = None
    gate: asyncio.Event | None = None


class FakeSubmitter:
    """Answers each destination from its script (then ``default``); records every PDU."""

    def __init__(
        self,
        script: Mapping[str, Iterable[Answer]] | None = None,
        *,
        default: Callable[[SubmitSm], Answer] | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        self._script = {phone: deque(answers) for phone, answers in (script or {}).items()}
        self._default = default or (lambda pdu: Answer(str(len(self.pdus))))
        self.timeline = timeline or Timeline()
        self.pdus: list[SubmitSm] = []
        self.urgent: list[bool] = []  # the urgent flag of each submit
        self.direct = True  # whether ready() offers to submit at once
        self.direct_submits = 0  # submits sent at once (ready())
        self._answering: set[asyncio.Future[None]] = set()

    def ready(self, *, urgent: bool = False) -> Callable[[SubmitSm], FakePendingSubmit] | None:
        """A submit sent at once, unless ``direct`` is off (then every submit is awaited)."""
        if not self.direct:
            return None
        return lambda pdu: self._submit_now(pdu, urgent)

    def _submit_now(self, pdu: SubmitSm, urgent: bool) -> FakePendingSubmit:
        self.pdus.append(pdu)
        self.urgent.append(urgent)
        self.direct_submits += 1
        self.timeline.add("submit", pdu.destination_addr)
        queue = self._script.get(pdu.destination_addr)
        answer = queue.popleft() if queue else self._default(pdu)
        pending = FakePendingSubmit(answer)
        task = asyncio.ensure_future(self._answer_later(pdu, answer, pending))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return pending

    async def _answer_later(
        self, pdu: SubmitSm, answer: Answer, pending: FakePendingSubmit
    ) -> None:
        """As :meth:`submit` answers: after the answer's gate and a turn of the loop."""
        if answer.gate is not None:
            await answer.gate.wait()
        await asyncio.sleep(0)
        if pending.future.done():
            return
        self.timeline.add(
            "submit-error" if answer.error is not None else "submit-ok", pdu.destination_addr
        )
        pending.future.set_result(None)

    async def submit(self, pdu: SubmitSm, *, urgent: bool = False) -> SubmitSmResp:
        self.pdus.append(pdu)
        self.urgent.append(urgent)
        self.timeline.add("submit", pdu.destination_addr)
        queue = self._script.get(pdu.destination_addr)
        answer = queue.popleft() if queue else self._default(pdu)
        if answer.gate is not None:
            await answer.gate.wait()
        await asyncio.sleep(0)
        if answer.error is not None:
            self.timeline.add("submit-error", pdu.destination_addr)
            raise answer.error
        self.timeline.add("submit-ok", pdu.destination_addr)
        return SubmitSmResp(message_id=answer.message_id)

    def to(self, phone: str) -> list[SubmitSm]:
        return [pdu for pdu in self.pdus if pdu.destination_addr == phone]


class FakePendingSubmit:
    """A submit :class:`FakeSubmitter` sent at once: answered as its :class:`Answer` says."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.cancelled = False

    def ok(self) -> bool:
        future = self.future
        return (
            not self.cancelled
            and future.done()
            and not future.cancelled()
            and self._answer.error is None
        )

    def answer(self) -> SubmitSmResp:
        if self.cancelled:
            raise asyncio.CancelledError
        self.future.result()
        if self._answer.error is not None:
            raise self._answer.error
        return SubmitSmResp(message_id=self._answer.message_id)

    def cancel(self) -> None:
        self.cancelled = True
        self.future.cancel()
