"""Settings of the reassembly of concatenated incoming SMS (section ``reassembly``)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ReassemblySettings:
    # The consumer group reading the parts topic; every role that receives shares it, so
    # each partition's parts are reassembled by one process.
    group_id: str = "smsc-gateway-reassembler"
    # How long after its first part a message waits for the rest before it is published as
    # it is (partial). The provider's operators glue a long message's parts within a minute
    # (SMPP seed, "Sending a message": "most operators wait no more than a minute"); twice
    # that leaves room for a part the provider delivers again after a lost answer.
    timeout_seconds: float = 120.0
    commit_interval_seconds: float = 1.0
    fetch_max_records: int = 500
    # Backoff while Kafka does not take a finished message (it is retried, never dropped).
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be above 0"
            for name in ("timeout_seconds", "commit_interval_seconds", "retry_initial_seconds")
            if getattr(self, name) <= 0
        ]
        if self.fetch_max_records < 1:
            problems.append("fetch_max_records must be at least 1")
        if self.retry_max_seconds < self.retry_initial_seconds:
            problems.append("retry_max_seconds must be at least retry_initial_seconds")
        if problems:
            raise ConfigError("; ".join(problems))
