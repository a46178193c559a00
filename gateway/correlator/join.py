"""Stage 2: join delivery reports to the parts of the requests that caused them. No I/O.

State, per route-topic partition (all keyed by (provider message id, phone)):

* the *parts* store: one :class:`PartEntry` per accepted SMS part, created from a ``submitted``
  record, holding request_id, tags, submit time, part index and the message's part ids;
* the *held* store: reports that arrived before their part, each with the time it was held.

A report for a known part is published at once as a ``part`` status. Its first final status
is recorded; when every part of the message has one, the ``message`` status is published and
the parts are kept ``done_ttl`` longer to absorb repeats. A report for an unknown part is held
until its part arrives (then joined, and kept, released, a hold longer: the stores can keep
a step whose statuses a crash lost, and the replayed record joins them again) or until
``hold`` has passed (then dead-lettered). Parts that never complete expire ``entry_ttl``
after submit, publishing an incomplete ``message`` status. Every step is a function of the
stores and the record, so replaying a record after a crash publishes the same events with
the same ``event_id``.

A *replayed* recipient (its resend after a sender crash was refused as a duplicate of the
first submit, whose message ids no result names) leaves a marker in the parts store, keyed by
its phone, for ``hold`` after the result: reports for that phone whose (message id, phone) is
unknown, held or arriving meanwhile, are adopted as single-part messages of the marker's
request (and then live ``entry_ttl`` like any part). A report adopted that way could belong to
another message to the same phone whose result is late; the short window keeps that rare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from gateway.events.status import (
    PartOutcome,
    RequestContext,
    message_status_event,
    part_status_event,
)

from .deadlines import DeadlineIndex
from .model import (
    HeldReport,
    HeldReports,
    PartEntry,
    RoutedReport,
    SubmittedMessage,
    dead_lettered_key,
    from_epoch,
    is_dead_lettered_key,
    part_key,
    replayed_key,
)
from .records import (
    Channel,
    InvalidInputError,
    Outbound,
    Report,
    RouteRecord,
    Step,
    parse_report,
)

V = TypeVar("V")

UNKNOWN_PART = "unknown_message_id"


class Store(Protocol[V]):
    """A table as the join sees it (a faust table behind an adapter, or a dict in tests)."""

    def get(self, key: str) -> V | None: ...

    def put(self, key: str, value: V) -> None: ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class JoinSettings:
    hold_seconds: float
    entry_ttl_seconds: float
    done_ttl_seconds: float


def overall_status(statuses: Sequence[str | None]) -> str:
    """A message's status from its parts' final statuses, in part order.

    ``delivered`` only when every part was; otherwise the first part that failed says why;
    parts that never reported leave it ``unknown`` unless another part failed.
    """
    for status in statuses:
        if status is not None and status != "delivered":
            return status
    return "delivered" if all(s is not None for s in statuses) else "unknown"


class Correlator:
    """The join over the parts and held stores; one instance per worker."""

    def __init__(
        self,
        parts: Store[PartEntry],
        held: Store[HeldReports],
        settings: JoinSettings,
        *,
        started_at: float,
    ) -> None:
        self._parts = parts
        self._held = held
        self._settings = settings
        # Held reports get at least a full hold after a (re)start: their results may still be
        # in the backlog this worker has not routed yet.
        self._started_at = started_at
        self._part_deadlines = DeadlineIndex()
        self._held_deadlines = DeadlineIndex()
        self._held_by_phone: dict[str, set[str]] = {}
        # Reports dead-lettered within a hold before the last recovery, by partition: the
        # recovered stores may have that step without Kafka having its dead letters.
        self._letter_again: dict[int, list[str]] = {}
        self.part_count = 0
        self.held_count = 0

    def handle(self, record: RouteRecord, partition: int, now: float) -> Step:
        """Apply one route-topic record of ``partition``."""
        if isinstance(record, SubmittedMessage):
            return self.submitted(record, partition, now)
        if isinstance(record, RoutedReport):
            return self.report(record, partition, now)
        return self.tick(partition, now)

    def submitted(self, message: SubmittedMessage, partition: int, now: float) -> Step:
        """Record the message's parts, then join the reports held for them."""
        step = Step()
        expires_at = message.submitted_at + self._settings.entry_ttl_seconds
        if message.replayed:
            marked_until = message.submitted_at + self._settings.hold_seconds
            self._mark_replayed(message, partition, marked_until, now, step)
            return step
        for index, message_id in enumerate(message.message_ids, start=1):
            key = part_key(message_id, message.phone)
            existing = self._parts.get(key)
            if existing is not None and existing.request_id == message.request_id:
                continue  # a replay: keep the statuses already recorded
            self.part_count += existing is None
            entry = PartEntry(
                request_id=message.request_id,
                phone=message.phone,
                tags=message.tags,
                submitted_at=message.submitted_at,
                message_ids=message.message_ids,
                index=index,
                partition=partition,
                expires_at=expires_at,
            )
            self._parts.put(key, entry)
            self._part_deadlines.add(partition, key, expires_at)
        for message_id in message.message_ids:
            self._release(part_key(message_id, message.phone), now, step)
        return step

    def report(self, routed: RoutedReport, partition: int, now: float) -> Step:
        """Join the report to its part, or hold it until the part is known."""
        step = Step()
        try:
            report = parse_report(routed.value)
        except InvalidInputError as exc:
            step.dead_letter(
                routed.origin, routed.key, routed.value, code=exc.code, reason=str(exc), at=now
            )
            return step
        key = part_key(report.message_id, report.phone)
        entry = self._parts.get(key)
        if entry is None:
            marker = self._replay_marker(report.phone, now)
            if marker is not None:
                entry = self._adopt(key, marker, partition)
        if entry is None:
            self._hold(key, routed, partition, now, step)
        else:
            self._join(key, entry, report, now, step)
        return step

    def tick(self, partition: int, now: float) -> Step:
        """Dead-letter the reports held too long and expire the parts past their time."""
        step = Step()
        for key in self._letter_again.pop(partition, ()):
            lettered = self._held.get(key)
            if lettered is not None:
                self._dead_letters(lettered.reports, step)
        for key in self._held_deadlines.pop_due(partition, now):
            self._expire_held(key, partition, now, step)
        for key in self._part_deadlines.pop_due(partition, now):
            entry = self._parts.get(key)
            if entry is None:
                continue
            if entry.expires_at > now:  # completed since: due later
                self._part_deadlines.add(partition, key, entry.expires_at)
                continue
            if not entry.message_ids:  # a replayed recipient's marker: nothing to report
                self._parts.delete(key)
                continue
            self._expire_message(entry, step)
        return step

    def rebuild(
        self,
        parts: Iterable[tuple[str, PartEntry]],
        held: Iterable[tuple[str, HeldReports]],
        *,
        recovered_at: float,
    ) -> None:
        """Index the stores' contents again, as after a recovery from the changelog.

        Held reports get a full hold from ``recovered_at``: a recovery can take longer than
        the hold, and their results may still be in the backlog not routed yet.
        """
        self._started_at = max(self._started_at, recovered_at)
        self._part_deadlines.clear()
        self._held_deadlines.clear()
        self._held_by_phone.clear()
        self._letter_again.clear()
        self.part_count = self.held_count = 0
        for key, entry in parts:
            self._part_deadlines.add(entry.partition, key, entry.expires_at)
            self.part_count += bool(entry.message_ids)
        for key, waiting in held:
            self._held_deadlines.add(waiting.partition, key, self._hold_deadline(waiting))
            if is_dead_lettered_key(key):
                self._letter_again.setdefault(waiting.partition, []).append(key)
                continue
            self._held_by_phone.setdefault(_phone_of(key), set()).add(key)
            self.held_count += len(waiting.reports) if waiting.released_at is None else 0

    # --- joining --------------------------------------------------------------------------

    def _join(self, key: str, entry: PartEntry, report: Report, now: float, step: Step) -> None:
        event = part_status_event(
            _context(entry),
            index=entry.index,
            report=report.event,
            reported_at=from_epoch(report.received_at),
        )
        step.outbound.append(Outbound(Channel.STATUS, entry.request_id.encode(), event))
        step.joined += 1
        step.latencies.append((float(event["latency_seconds"]), report.final))
        if report.final:
            self._record_final(
                key, entry, entry.finished(report.status, report.received_at), now, step
            )

    def _record_final(
        self, key: str, entry: PartEntry, updated: PartEntry, now: float, step: Step
    ) -> None:
        """Store the part's final status and, once every part has one, the message's; one
        write per part (each write is a changelog record)."""
        siblings = [(k, updated if k == key else self._parts.get(k)) for k in entry.sibling_keys]
        finals = [s for _, s in siblings if s is not None and s.final_status is not None]
        if len(finals) < len(siblings) or updated.completed:
            if updated is not entry:
                self._parts.put(key, updated)
            if updated.completed:  # a repeat: the same message event, nothing new to record
                step.outbound.append(_message_outbound(updated, finals, _decided(finals), True))
            return
        step.outbound.append(_message_outbound(updated, finals, _decided(finals), True))
        expires_at = now + self._settings.done_ttl_seconds
        for sibling_key, sibling in zip(entry.sibling_keys, finals, strict=True):
            self._parts.put(sibling_key, sibling.completed_until(expires_at))
            self._part_deadlines.add(entry.partition, sibling_key, expires_at)

    def _expire_message(self, entry: PartEntry, step: Step) -> None:
        siblings = [(key, self._parts.get(key)) for key in entry.sibling_keys]
        if entry.completed:
            step.expired_complete += 1
        else:
            present = [s for _, s in siblings if s is not None]
            step.outbound.append(_message_outbound(entry, present, entry.expires_at, False))
            step.expired_incomplete += 1
        for key, sibling in siblings:
            if sibling is not None:
                self._parts.delete(key)
                self.part_count -= 1

    # --- replayed recipients ---------------------------------------------------------------

    def _mark_replayed(
        self, message: SubmittedMessage, partition: int, expires_at: float, now: float, step: Step
    ) -> None:
        """Leave the marker, and adopt the reports already held for the phone."""
        marker = PartEntry(
            request_id=message.request_id,
            phone=message.phone,
            tags=message.tags,
            submitted_at=message.submitted_at,
            message_ids=(),
            index=0,
            partition=partition,
            expires_at=expires_at,
        )
        key = replayed_key(message.phone)
        self._parts.put(key, marker)
        self._part_deadlines.add(partition, key, expires_at)
        for held_key in sorted(self._held_by_phone.get(message.phone, ())):
            part = self._parts.get(held_key)
            if part is None:
                self._adopt(held_key, marker, partition)
            elif part.request_id != message.request_id:
                continue  # released to the result that named it
            self._release(held_key, now, step)

    def _replay_marker(self, phone: str, now: float) -> PartEntry | None:
        marker = self._parts.get(replayed_key(phone))
        return marker if marker is not None and marker.expires_at > now else None

    def _adopt(self, key: str, marker: PartEntry, partition: int) -> PartEntry:
        """The unknown message id of ``key`` as a single-part message of the marker's
        request: the first submit's, which no result names."""
        entry = replace(
            marker,
            message_ids=(key.rsplit("/", 1)[0],),
            index=1,
            partition=partition,
            expires_at=marker.submitted_at + self._settings.entry_ttl_seconds,
        )
        self._parts.put(key, entry)
        self._part_deadlines.add(partition, key, entry.expires_at)
        self.part_count += 1
        return entry

    # --- holding --------------------------------------------------------------------------

    def _hold(self, key: str, routed: RoutedReport, partition: int, now: float, step: Step) -> None:
        waiting = self._held.get(key)
        earlier = waiting.reports if waiting is not None and waiting.released_at is None else ()
        if any(h.report.origin == routed.origin for h in earlier):
            return  # a replay of a report already held
        held = HeldReports(partition, (*earlier, HeldReport(routed, now)))
        self._held.put(key, held)
        self._held_by_phone.setdefault(_phone_of(key), set()).add(key)
        self._held_deadlines.add(partition, key, self._hold_deadline(held))
        self.held_count += 1
        step.held += 1

    def _release(self, key: str, now: float, step: Step) -> None:
        """Join the reports held for ``key``, whose part is now known. They stay in the held
        table, released, for a hold: the tables may keep this step (a kept RocksDB directory,
        a changelog another worker recovers from) while a crash lost its statuses, and the
        record replayed then must find them to publish the same events again."""
        waiting = self._held.get(key)
        if waiting is None:
            return
        if waiting.released_at is None:
            waiting = HeldReports(waiting.partition, waiting.reports, released_at=now)
            self._held.put(key, waiting)
            self._held_deadlines.add(waiting.partition, key, self._hold_deadline(waiting))
            self.held_count -= len(waiting.reports)
        for held in waiting.reports:
            step.extend(self.report(held.report, waiting.partition, now))

    def _expire_held(self, key: str, partition: int, now: float, step: Step) -> None:
        waiting = self._held.get(key)
        if waiting is None:
            return
        if waiting.released_at is not None:
            self._drop_released(key, waiting, now)
            return
        hold = self._settings.hold_seconds
        due = [h for h in waiting.reports if max(h.held_at, self._started_at) + hold <= now]
        kept = tuple(h for h in waiting.reports if h not in due)
        self._dead_letters(due, step)
        self._keep_dead_lettered(key, partition, due, now)
        self.held_count -= len(due)
        if kept:
            waiting = HeldReports(partition, kept)
            self._held.put(key, waiting)
            self._held_deadlines.add(partition, key, self._hold_deadline(waiting))
        else:
            self._held.delete(key)
            self._forget_held(key)

    def _dead_letters(self, reports: Iterable[HeldReport], step: Step) -> None:
        hold = self._settings.hold_seconds
        reason = f"no accepted send result for this message id and phone within {hold:g} s"
        for held in reports:
            report = held.report
            step.dead_letter(
                report.origin,
                report.key,
                report.value,
                code=UNKNOWN_PART,
                reason=reason,
                at=held.held_at,  # as on a replay: the same dead letter, the same content
            )

    def _keep_dead_lettered(
        self, key: str, partition: int, reports: Sequence[HeldReport], now: float
    ) -> None:
        """Keep the reports just dead-lettered a hold longer, so that a recovery within it
        dead-letters them again: the stores can keep this step while a crash lost its dead
        letters."""
        if not reports:
            return
        lettered_key = dead_lettered_key(key)
        earlier = self._held.get(lettered_key)
        kept = HeldReports(
            partition, (*(earlier.reports if earlier else ()), *reports), released_at=now
        )
        self._held.put(lettered_key, kept)
        self._held_deadlines.add(partition, lettered_key, self._hold_deadline(kept))

    def _drop_released(self, key: str, waiting: HeldReports, now: float) -> None:
        """Reports joined a hold ago leave the held table, silently."""
        deadline = self._hold_deadline(waiting)
        if deadline > now:
            self._held_deadlines.add(waiting.partition, key, deadline)
            return
        self._held.delete(key)
        self._forget_held(key)

    def _forget_held(self, key: str) -> None:
        keys = self._held_by_phone.get(_phone_of(key))
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._held_by_phone[_phone_of(key)]

    def _hold_deadline(self, waiting: HeldReports) -> float:
        """A hold from when the reports were first held, or from their release; and at least
        a hold from the worker's start."""
        since = waiting.first_held_at() if waiting.released_at is None else waiting.released_at
        return max(since, self._started_at) + self._settings.hold_seconds


def _phone_of(key: str) -> str:
    return key.rsplit("/", 1)[1]


def _context(entry: PartEntry) -> RequestContext:
    return RequestContext(
        request_id=entry.request_id,
        phone=entry.phone,
        tags=entry.tags,
        submitted_at=from_epoch(entry.submitted_at),
        message_ids=entry.message_ids,
    )


def _decided(finals: Sequence[PartEntry]) -> float:
    """When the last part reported: the same on every replay, so is the message event."""
    return max(s.final_at or s.submitted_at for s in finals)


def _message_outbound(
    entry: PartEntry, parts: Sequence[PartEntry], decided_at: float, complete: bool
) -> Outbound:
    status_by_index = {p.index: p.final_status for p in parts}
    outcomes = [
        PartOutcome(index, message_id, status_by_index.get(index))
        for index, message_id in enumerate(entry.message_ids, start=1)
    ]
    event = message_status_event(
        _context(entry),
        status=overall_status([o.status for o in outcomes]),
        complete=complete,
        parts=outcomes,
        decided_at=from_epoch(decided_at),
    )
    return Outbound(Channel.STATUS, entry.request_id.encode(), event)
