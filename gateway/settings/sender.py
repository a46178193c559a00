"""The sender's sections: ``sender`` (lanes, retries, idempotency), ``rate`` (the adaptive
rate, :mod:`gateway.sender.ratelimit`) and ``guards`` (the provider's duplicate and flood
rules, :mod:`gateway.sender.guards`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Transport(StrEnum):
    """How a send request reaches the provider: its ``transport`` field and the sender's
    ``default_transport``; the values are those of the JSON, the result events and the
    environment."""

    SMPP = "smpp"
    HTTP = "http"
    # In a request only: the sender's default_transport decides.
    AUTO = "auto"


@dataclass(frozen=True, slots=True)
class SenderSettings:
    group_id: str = "smsc-gateway-sender"
    max_in_flight: int = 1000
    fetch_max_records: int = 500
    commit_interval_seconds: float = 0.2
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # How long a temporary failure (link down, provider error) is retried before "failed".
    give_up_after_seconds: float = 600.0
    drain_timeout_seconds: float = 30.0
    # Request ids with a result in the last this-many seconds are never sent again.
    idempotency_window_seconds: float = 900.0
    # The transport of requests that say "auto": smpp, or http (over the provider's HTTP API,
    # falling back to SMPP while the HTTP credential is blocked or unfunded).
    default_transport: Transport = Transport.SMPP

    def problems(self) -> list[str]:
        found = [] if self.max_in_flight >= 1 else ["max_in_flight must be at least 1"]
        if self.default_transport not in {Transport.SMPP, Transport.HTTP}:
            found.append("default_transport must be smpp or http")
        return found


POLICIES = frozenset({"reject", "delay"})


@dataclass(frozen=True, slots=True)
class GuardSettings:
    duplicate_window_seconds: float = 60.0
    duplicate_policy: str = "reject"
    flood_limit: int = 50
    flood_gap_seconds: float = 30.0
    flood_policy: str = "delay"

    def problems(self) -> list[str]:
        found = [
            f"{name} must be one of {sorted(POLICIES)}"
            for name, value in (
                ("duplicate_policy", self.duplicate_policy),
                ("flood_policy", self.flood_policy),
            )
            if value not in POLICIES
        ]
        if self.flood_limit < 1:
            found.append("flood_limit must be at least 1")
        return found


@dataclass(frozen=True, slots=True)
class RateSettings:
    per_second: float = 30.0
    # Probing above ``per_second`` is allowed up to this rate; equal means never above it.
    max_per_second: float | None = None
    min_per_second: float = 1.0
    # A cut lands this far below the measured limit (the drain makes 1 % headroom enough).
    cut_factor: float = 0.99
    cut_guard_seconds: float = 0.25
    max_cut: float = 0.1
    # After persistent throttling: this share of the measured limit, for this long.
    drain_factor: float = 0.9
    drain_seconds: float = 0.5
    hold_seconds: float = 3.0
    probe_doubling_seconds: float = 1.0
    burst_seconds: float = 0.05

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.per_second <= 0 or self.min_per_second <= 0:
            found.append("per_second and min_per_second must be positive")
        if self.max_per_second is not None and self.max_per_second < self.per_second:
            found.append("max_per_second must be at least per_second")
        if not 0.5 <= self.cut_factor < 1.0:
            found.append("cut_factor must be in [0.5, 1)")
        if not 0.5 <= self.drain_factor <= self.cut_factor:
            found.append("drain_factor must be in [0.5, cut_factor]")
        if self.drain_seconds < 0:
            found.append("drain_seconds must not be negative")
        return found
