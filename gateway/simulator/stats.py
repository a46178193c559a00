"""Counters and the record of accepted submits, for tests and benchmarks."""

from __future__ import annotations

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


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has done since it was built; every field only grows, except
    ``dlrs_pending`` (reports scheduled and not yet acknowledged with ESME_ROK)."""

    connections: int = 0
    connection_errors: int = 0
    binds_ok: int = 0
    binds_failed: int = 0
    submits: int = 0
    submit_statuses: Counter[int] = field(default_factory=Counter)
    dlrs_scheduled: int = 0
    dlrs_sent: int = 0
    dlrs_acked: int = 0
    dlrs_refused: int = 0
    dlrs_timed_out: int = 0
    dlrs_pending: int = 0
    delivers_sent: int = 0
