"""What callers need of a running local Kafka, whether one broker or the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RunningKafka(Protocol):
    """A local broker or cluster that tests, the demo and benchmarks can point clients at."""

    @property
    def bootstrap_servers(self) -> str: ...

    def create_topics(
        self, names: Sequence[str], partitions: int = 3, timeout_seconds: float = 30.0
    ) -> None: ...
