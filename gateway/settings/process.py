"""The ``http`` (probes and metrics) and ``log`` sections, which every role has."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "0.0.0.0"  # noqa: S104 - probes and metrics must be reachable in a pod
    port: int = 9108


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"

    def problems(self) -> list[str]:
        levels = {"DEBUG", "INFO", "WARNING", "ERROR"}
        return [] if self.level.upper() in levels else [f"level must be one of {levels}"]
