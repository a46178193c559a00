"""The confirmations pending on ``smsc.waitcall.v1``, rebuilt from the topic itself (no I/O).

Theory of operation. The topic is the state: every fact of the flow is an event on it,
keyed by the subscriber's phone, so all of one phone's events are in one partition, in the
order they happened. The book reads them in that order:

- ``number_issued`` opens a pending confirmation (unless its request already ended);
- ``call`` (the provider's report of the subscriber's call) is attached to every pending
  confirmation of that phone that has no call yet, when the call's time is at most the
  deadline plus ``grace_seconds``; a call read before the number was issued is not;
- an outcome (``confirmed``, ``expired``, ``rejected``, ``failed``) ends the request.

:meth:`due` gives the outcomes that are now decided: ``confirmed`` for a pending
confirmation with a call, ``expired`` for one whose deadline passed ``grace_seconds`` ago
without one (the grace covers the callback's way to Kafka, and a retry of the provider's
when the ingress was down). Each outcome is a function of the topic's content, not of when
it is read, so the book rebuilt after a restart decides what it decided before; the outcome
the earlier run published is on the topic and ends the request instead. The caller
publishes an outcome and then calls :meth:`ended`.

Ended requests are remembered ``remember_seconds`` (a redelivered request must not get a
second number); what is older is forgotten.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import orjson

from gateway.events.waitcall import CONFIRMED, EXPIRED, OUTCOME_KINDS, NumberIssued, Outcome


@dataclass(slots=True)
class _Pending:
    issued: NumberIssued
    called_at: datetime | None = None
    call_event_id: str | None = None


class ConfirmationBook:
    """See the module docstring."""

    def __init__(self, *, grace_seconds: float, remember_seconds: float) -> None:
        self._grace = timedelta(seconds=grace_seconds)
        self._remember = timedelta(seconds=remember_seconds)
        self._pending: dict[str, _Pending] = {}
        self._by_phone: dict[str, set[str]] = {}
        # Finding what is due never scans the pending set: requests with a call, in the
        # order their calls were read, and a heap of expiry times (entries of requests that
        # ended or got a call meanwhile are dropped when they reach the top).
        self._called: dict[str, datetime] = {}
        self._expiries: list[tuple[datetime, str]] = []
        self._ended: OrderedDict[str, datetime] = OrderedDict()
        self.unmatched_calls = 0

    def __len__(self) -> int:
        return len(self._pending)

    def known(self, request_id: str) -> bool:
        """Whether the request was given a number or ended (within memory)."""
        return request_id in self._pending or request_id in self._ended

    def read(self, value: bytes | None) -> bool:
        """One record of the topic, in partition order; True when it made an outcome due.

        Records that are not waitcall events are skipped: the topic is not ours alone to
        police, and a bad record must not stop the flow.
        """
        event = _event(value)
        if event is None:
            return False
        kind = event.get("kind")
        if kind == "number_issued":
            self._open(event)
            return False
        if kind == "call":
            return self._call(event)
        if kind in OUTCOME_KINDS and isinstance(event.get("request_id"), str):
            self.ended(event["request_id"], _time(event.get("occurred_at")))
        return False

    def due(self, now: datetime) -> list[Outcome]:
        """The outcomes decided by ``now``: confirmed (a call came) and expired."""
        self._forget(now)
        found = []
        for request_id, called_at in self._called.items():
            found.append(self._outcome(CONFIRMED, request_id, self._pending[request_id], called_at))
        for request_id in self._expired(now):
            pending = self._pending[request_id]
            found.append(self._outcome(EXPIRED, request_id, pending, pending.issued.deadline))
        return found

    def next_expiry(self) -> datetime | None:
        """When the earliest pending confirmation without a call expires."""
        self._drop_stale()
        return self._expiries[0][0] if self._expiries else None

    def _expired(self, now: datetime) -> list[str]:
        """The requests whose expiry time has come, without taking them off the heap."""
        self._drop_stale()
        taken: list[tuple[datetime, str]] = []
        while self._expiries and self._expiries[0][0] <= now:
            taken.append(heapq.heappop(self._expiries))
        for entry in taken:
            heapq.heappush(self._expiries, entry)
        return [request_id for _, request_id in taken if self._waiting(request_id)]

    def _drop_stale(self) -> None:
        while self._expiries and not self._waiting(self._expiries[0][1]):
            heapq.heappop(self._expiries)

    def _waiting(self, request_id: str) -> bool:
        return request_id in self._pending and request_id not in self._called

    def ended(self, request_id: str, at: datetime | None) -> None:
        """The request's outcome is on Kafka."""
        pending = self._pending.pop(request_id, None)
        self._called.pop(request_id, None)
        if pending is not None:
            phones = self._by_phone.get(pending.issued.phone, set())
            phones.discard(request_id)
            if not phones:
                self._by_phone.pop(pending.issued.phone, None)
        if request_id not in self._ended and at is not None:
            self._ended[request_id] = at

    def _open(self, event: dict[str, Any]) -> None:
        issued = number_issued(event)
        if issued is None or self.known(issued.request_id):
            return
        self._pending[issued.request_id] = _Pending(issued)
        self._by_phone.setdefault(issued.phone, set()).add(issued.request_id)
        heapq.heappush(self._expiries, (issued.deadline + self._grace, issued.request_id))

    def _call(self, event: dict[str, Any]) -> bool:
        phone = event.get("phone")
        called_at = _time(event.get("called_at")) or _time(event.get("received_at"))
        if not isinstance(phone, str) or called_at is None:
            return False
        matched = False
        for request_id in self._by_phone.get(phone.lstrip("+"), ()):
            pending = self._pending[request_id]
            late = called_at > pending.issued.deadline + self._grace
            if pending.called_at is None and not late:
                pending.called_at = called_at
                pending.call_event_id = event.get("event_id")
                self._called[request_id] = called_at
                matched = True
        if not matched:
            self.unmatched_calls += 1
        return matched

    def _outcome(
        self, kind: str, request_id: str, pending: _Pending, decided_at: datetime
    ) -> Outcome:
        issued = pending.issued
        return Outcome(
            kind=kind,
            request_id=request_id,
            phone=issued.phone,
            decided_at=decided_at,
            tags=issued.tags,
            issued=issued,
            called_at=pending.called_at,
            call_event_id=pending.call_event_id,
        )

    def _forget(self, now: datetime) -> None:
        horizon = now - self._remember
        while self._ended:
            request_id, at = next(iter(self._ended.items()))
            if at >= horizon:
                return
            del self._ended[request_id]


def number_issued(event: dict[str, Any]) -> NumberIssued | None:
    """The number_issued fact of an event; None when a field it needs is missing."""
    request_id, phone, call_to = event.get("request_id"), event.get("phone"), event.get("call_to")
    issued_at, deadline = _time(event.get("issued_at")), _time(event.get("deadline"))
    if not (isinstance(request_id, str) and isinstance(phone, str) and isinstance(call_to, str)):
        return None
    if issued_at is None or deadline is None:
        return None
    phones, tags, raw = event.get("all_phones"), event.get("tags"), event.get("raw")
    return NumberIssued(
        request_id=request_id,
        phone=phone,
        call_to=call_to,
        all_phones=tuple(str(p) for p in phones) if isinstance(phones, list) else (call_to,),
        issued_at=issued_at,
        deadline=deadline,
        tags=MappingProxyType(dict(tags) if isinstance(tags, dict) else {}),
        raw=MappingProxyType(dict(raw) if isinstance(raw, dict) else {}),
    )


def _event(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and event.get("schema") == "smsc.waitcall/1" else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
