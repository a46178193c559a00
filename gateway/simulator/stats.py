"""Counters and the records of accepted submits and parts, for tests and benchmarks."""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple


class SubmitRecord(NamedTuple):
    """One accepted submit_sm, kept compact (a tuple) so long benchmarks stay small."""

    message_id: str
    system_id: str
    destination_addr: str
    short_message: bytes
    data_coding: int
    registered_delivery: int
    submitted_at: float  # Unix time


class AcceptedParts:
    """When each account's SMS parts were accepted, on the simulator's monotonic clock.

    Keeps the times of at least the ``limit`` most recent parts per account (8 bytes each,
    at most twice that many), enough for a 1,000/s benchmark over a minute with the default.
    ``limit=0`` keeps none.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._times: dict[str, array[float]] = {}

    def add(self, system_id: str, parts: int, now: float) -> None:
        if self._limit == 0:
            return
        times = self._times.get(system_id)
        if times is None:
            times = self._times[system_id] = array("d")
        times.extend([now] * parts)
        if len(times) > 2 * self._limit:
            del times[: len(times) - self._limit]

    def between(self, t0: float, t1: float, system_id: str | None = None) -> int:
        """Parts accepted at ``t0 <= t < t1`` (of ``system_id``, or of every account)."""
        accounts = self._times if system_id is None else [system_id]
        return sum(self._count(self._times.get(a, array("d")), t0, t1) for a in accounts)

    def per_second(self, t0: float, t1: float, system_id: str | None = None) -> list[int]:
        """Parts accepted in each whole second from ``t0`` (the last one may be shorter)."""
        seconds = math.ceil(t1 - t0)
        return [self.between(t0 + i, min(t0 + i + 1, t1), system_id) for i in range(seconds)]

    @staticmethod
    def _count(times: array[float], t0: float, t1: float) -> int:
        return bisect.bisect_left(times, t1) - bisect.bisect_left(times, t0)


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has done since it was built; every field only grows, except
    ``dlrs_pending`` and ``incoming_pending`` (reports and incoming SMS not yet answered
    ESME_ROK or refused for good).

    ``submits`` counts the submit_sm judged (withheld ones only when accepted anyway),
    ``submit_statuses`` by command_status;
    ``accepted_parts`` counts accepted SMS parts per system_id, and ``parts`` says when
    (see :meth:`accepted_between` and :meth:`accepted_per_second`).
    """

    connections: int = 0
    connection_errors: int = 0
    binds_ok: int = 0
    binds_failed: int = 0
    binds_kicked: int = 0  # closed because a newer bind of the login took their place
    connections_dropped: int = 0  # by the drop fault
    submits: int = 0
    submit_statuses: Counter[int] = field(default_factory=Counter)
    submits_withheld: int = 0  # never answered, by the withhold fault
    throttled: int = 0
    duplicates_refused: int = 0
    floods_refused: int = 0
    accepted_parts: Counter[str] = field(default_factory=Counter)
    parts: AcceptedParts = field(default_factory=AcceptedParts)
    dlrs_scheduled: int = 0
    dlrs_sent: int = 0
    dlrs_acked: int = 0
    dlrs_refused: int = 0
    dlrs_timed_out: int = 0
    dlrs_rejected: int = 0  # answered with a permanent error status: not sent again
    dlrs_pending: int = 0
    hlr_results: int = 0  # reports scheduled that answer an HLR request
    delivers_sent: int = 0
    incoming_queued: int = 0
    incoming_sent: int = 0  # attempts, redeliveries included
    incoming_acked: int = 0
    incoming_refused: int = 0  # answered with a temporary error status: sent again
    incoming_timed_out: int = 0
    incoming_rejected: int = 0  # answered with a permanent error status: not sent again
    incoming_pending: int = 0

    def accept_parts(self, system_id: str, parts: int, now: float) -> None:
        """Count ``parts`` SMS accepted from ``system_id`` at monotonic ``now``."""
        self.accepted_parts[system_id] += parts
        self.parts.add(system_id, parts, now)

    def accepted_between(self, t0: float, t1: float, system_id: str | None = None) -> int:
        """Parts accepted at monotonic ``t0 <= t < t1`` (``SmppSimulator.now()`` tells the
        time), of ``system_id`` or of everyone, within what the record keeps."""
        return self.parts.between(t0, t1, system_id)

    def accepted_per_second(self, t0: float, t1: float, system_id: str | None = None) -> list[int]:
        """Parts accepted in each second from ``t0`` to ``t1``."""
        return self.parts.per_second(t0, t1, system_id)
