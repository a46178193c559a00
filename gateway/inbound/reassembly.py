"""Reassembly of concatenated incoming SMS from the parts topic: a pure state machine.

The reassembler service reads parts in partition order and feeds each to :meth:`Reassembly.add`
with its partition and offset. What comes out is whole messages and, once a message's first
part is older than the timeout, partial ones. The machine never reads a clock: every
partition has its own clock that only moves forward, pushed by the parts' received times
(event time) as they are fed, and by :meth:`Reassembly.tick` with the wall clock, which the
service calls only for partitions it has read to their end. A replay after downtime thus
sees the same timeouts as the first reading did, not a flood of false ones.

Restart safety lives in :meth:`Reassembly.safe_offset`, the offset the service may commit:

- never past a part of a message still pending, so a restart reads it again;
- never past the first part of a message finished less than ``timeout`` ago, so a part the
  provider delivers again after a restart is still known as a repeat (its answer may have
  been lost with the process) and does not start a bogus message;
- never between the parts of a finished message, so a replay never sees only its tail.

A replay finishes the same messages from the same parts again, and their events carry the
same ``event_id``: consumers drop the repeat.

A message is keyed by (source, destination, scheme, reference, total): the 8-bit, 16-bit and
SAR references are separate spaces, and a part announcing another total belongs to another
message (references are reused, 8-bit ones after 256 messages). A part repeating a sequence
number already held is a duplicate when its body is the same; with another body the held
message is finished as it is (``superseded``: its reference was reused before it completed)
and the part starts a new one.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from gateway.events.delivery import IncomingMessage
from gateway.smpp.textcoding import decode_text

from .parts import IncomingPart, MessageKey

P = TypeVar("P", bound=Hashable)


class Outcome(StrEnum):
    """Why a message left the pending set."""

    COMPLETE = "complete"
    TIMED_OUT = "timed_out"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Assembled:
    """A finished message: every part, or (partial) those that arrived, in sequence order."""

    key: MessageKey
    parts: tuple[IncomingPart, ...]
    outcome: Outcome

    @property
    def total(self) -> int:
        return self.key[4]

    @property
    def missing(self) -> tuple[int, ...]:
        held = {p.concat.sequence for p in self.parts}
        return tuple(n for n in range(1, self.total + 1) if n not in held)


@dataclass(frozen=True, slots=True)
class Added:
    """What feeding one part produced: finished messages, and whether it was a repeat."""

    finished: tuple[Assembled, ...]
    duplicate: bool


@dataclass(slots=True)
class _Span:
    """The offsets a message's records occupy in its partition."""

    low: int
    high: int


@dataclass(slots=True)
class _Pending:
    parts: dict[int, IncomingPart]
    span: _Span
    serial: int  # tells this entry from a later one under the same key


@dataclass(slots=True)
class _Finished:
    # (sequence, body) of every part, to tell the provider's repeats from a reused reference.
    seen: frozenset[tuple[int, bytes]]
    span: _Span
    serial: int


@dataclass(slots=True)
class _PartitionState:
    clock: datetime | None = None
    pending: dict[MessageKey, _Pending] = field(default_factory=dict)
    finished: dict[MessageKey, _Finished] = field(default_factory=dict)
    # (when, serial, key) heaps of pending deadlines and of finished messages to forget;
    # an entry whose serial no longer matches its key's is stale and skipped.
    deadlines: list[tuple[datetime, int, MessageKey]] = field(default_factory=list)
    forgets: list[tuple[datetime, int, MessageKey]] = field(default_factory=list)
    # Spans of finished messages the committed offset has not passed yet.
    spans: list[_Span] = field(default_factory=list)


class Reassembly(Generic[P]):
    """Pending parts per partition; see the module docstring for the rules."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timedelta(seconds=timeout_seconds)
        self._partitions: dict[P, _PartitionState] = {}
        self._serials = itertools.count()

    def add(self, partition: P, offset: int, part: IncomingPart) -> Added:
        """Feed the part read at ``offset``; first moves the partition's clock to its time."""
        state = self._partitions.setdefault(partition, _PartitionState())
        finished = self._advance(state, part.received_at)
        key = part.message_key
        sequence = part.concat.sequence
        done = state.finished.get(key)
        if done is not None and (sequence, part.body) in done.seen:
            done.span.high = max(done.span.high, offset)
            return Added(tuple(finished), duplicate=True)
        pending = state.pending.get(key)
        if pending is not None and sequence in pending.parts:
            if pending.parts[sequence].body == part.body:
                pending.span.high = max(pending.span.high, offset)
                return Added(tuple(finished), duplicate=True)
            finished.append(self._finish(state, key, Outcome.SUPERSEDED))
            pending = None
        if pending is None:
            serial = next(self._serials)
            pending = state.pending[key] = _Pending({}, _Span(offset, offset), serial)
            heapq.heappush(state.deadlines, (part.received_at + self._timeout, serial, key))
        pending.parts[sequence] = part
        pending.span.high = max(pending.span.high, offset)
        if len(pending.parts) == part.concat.total:
            finished.append(self._finish(state, key, Outcome.COMPLETE))
        return Added(tuple(finished), duplicate=False)

    def tick(self, partition: P, now: datetime) -> list[Assembled]:
        """Move the partition's clock to ``now`` (if later); the messages that timed out."""
        state = self._partitions.get(partition)
        return [] if state is None else self._advance(state, now)

    def safe_offset(self, partition: P, consumed: int) -> int:
        """The offset to commit, given that every record before ``consumed`` was fed."""
        state = self._partitions.get(partition)
        if state is None:
            return consumed
        held = [p.span.low for p in state.pending.values()]
        held += [f.span.low for f in state.finished.values()]
        offset = min([consumed, *held])
        # Step back to the start of any finished message the offset splits. Taken by
        # descending start, one pass is enough: a span already passed starts at or after
        # the offset, so stepping further back cannot make it split again.
        for span in sorted(state.spans, key=lambda s: s.low, reverse=True):
            if span.low < offset <= span.high:
                offset = span.low
        return offset

    def committed(self, partition: P, offset: int) -> None:
        """``offset`` was committed: spans wholly before it are no longer needed."""
        state = self._partitions.get(partition)
        if state is not None:
            state.spans = [s for s in state.spans if s.high >= offset]

    def drop(self, partition: P) -> None:
        """Forget a partition this consumer no longer owns (its next owner replays it)."""
        self._partitions.pop(partition, None)

    def pending(self) -> int:
        """Messages waiting for parts, over every partition."""
        return sum(len(s.pending) for s in self._partitions.values())

    def _advance(self, state: _PartitionState, now: datetime) -> list[Assembled]:
        if state.clock is not None and now <= state.clock:
            return []
        state.clock = now
        finished: list[Assembled] = []
        while state.deadlines and state.deadlines[0][0] <= now:
            _, serial, key = heapq.heappop(state.deadlines)
            pending = state.pending.get(key)
            if pending is not None and pending.serial == serial:
                finished.append(self._finish(state, key, Outcome.TIMED_OUT))
        while state.forgets and state.forgets[0][0] <= now:
            _, serial, key = heapq.heappop(state.forgets)
            done = state.finished.get(key)
            if done is not None and done.serial == serial:
                del state.finished[key]
        return finished

    def _finish(self, state: _PartitionState, key: MessageKey, outcome: Outcome) -> Assembled:
        pending = state.pending.pop(key)
        parts = tuple(pending.parts[n] for n in sorted(pending.parts))
        seen = frozenset((p.concat.sequence, p.body) for p in parts)
        forget_at = max(p.received_at for p in parts) + self._timeout
        state.finished[key] = _Finished(seen, pending.span, pending.serial)
        heapq.heappush(state.forgets, (forget_at, pending.serial, key))
        state.spans.append(pending.span)
        return Assembled(key, parts, outcome)


def incoming_message(message: Assembled) -> IncomingMessage:
    """The ``smsc.incoming/1`` content of a finished message.

    Text is decoded after joining, so a character split across parts (a UCS2 surrogate pair,
    a GSM escape and its character) reads whole. A gap left by a missing part is not joined
    across: each run of consecutive parts is decoded on its own.
    """
    source_addr, destination_addr, scheme, reference, total = message.key
    first = message.parts[0]
    digest = hashlib.sha256()
    for part in message.parts:
        digest.update(b"%d:%d:" % (part.concat.sequence, len(part.body)) + part.body)
    return IncomingMessage(
        source="smpp",
        phone=first.phone,
        to=destination_addr.lstrip("+"),
        text="".join(decode_text(body, coding) for body, coding in _runs(message.parts)),
        received_at=max(p.received_at for p in message.parts),
        data_coding=first.data_coding,
        # From the parts' content only, so a replay publishes the same event_id.
        identity=(source_addr, destination_addr, scheme, reference, total, digest.hexdigest()),
        raw={
            "esm_class": first.esm_class,
            "concat": {"scheme": scheme.value, "reference": reference, "total": total},
            "parts": [
                {
                    "sequence": p.concat.sequence,
                    "short_message_hex": (p.header + p.body).hex(),
                    "data_coding": p.data_coding,
                }
                for p in message.parts
            ],
        },
        parts=total,
        missing=message.missing,
    )


def _runs(parts: tuple[IncomingPart, ...]) -> Iterator[tuple[bytes, int]]:
    """Bodies of consecutive parts in one data_coding, joined."""
    run: list[IncomingPart] = []
    for part in parts:
        if run and (
            part.concat.sequence != run[-1].concat.sequence + 1
            or part.data_coding != run[-1].data_coding
        ):
            yield b"".join(p.body for p in run), run[0].data_coding
            run = []
        run.append(part)
    if run:
        yield b"".join(p.body for p in run), run[0].data_coding
