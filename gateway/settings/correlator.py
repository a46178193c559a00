"""The correlator's settings section, ``GATEWAY_CORRELATOR_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass

STORES = frozenset({"rocksdb", "memory"})
EVENT_LOOPS = ("uvloop", "asyncio")


@dataclass(frozen=True, slots=True)
class CorrelatorSettings:
    # The faust app id: the consumer group, and the prefix of the tables' changelog topics.
    app_id: str = "smsc-correlator"
    # Internal topic keyed by phone that both inputs are repartitioned onto (docs/correlator.md).
    route_topic: str = "smsc.correlator.route.v1"
    # Partitions of the route topic and of both changelogs: the most workers that share the
    # work. Fixed once created; the correlator refuses to start on a mismatch. Twelve: room
    # for twelve workers, some ten times a large account's reports (docs/correlator.md).
    partitions: int = 12
    replication_factor: int = 3
    route_retention_seconds: float = 604800.0
    store: str = "rocksdb"
    data_dir: str = "/var/lib/smsc-gateway/correlator"
    # A report is held this long for its send result before it is dead-lettered.
    hold_seconds: float = 600.0
    # Parts without a final report are forgotten this long after submit: the provider's
    # longest validity (24 h) plus the day it keeps reports for queries (docs/correlator.md).
    entry_ttl_seconds: float = 172800.0
    # Parts of a message whose every part reported stay this long, to join repeats.
    done_ttl_seconds: float = 3600.0
    tick_interval_seconds: float = 1.0
    commit_interval_seconds: float = 1.0
    # uvloop (libuv under asyncio) or asyncio's own loop; docs/benchmarks.md measures both.
    event_loop: str = "uvloop"

    def problems(self) -> list[str]:
        """What is wrong with these settings, all at once."""
        found = []
        if self.store not in STORES:
            found.append(f"store must be one of {', '.join(sorted(STORES))}")
        if self.event_loop not in EVENT_LOOPS:
            found.append(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        if self.partitions < 1 or self.replication_factor < 1:
            found.append("partitions and replication_factor must be at least 1")
        durations = {
            "hold_seconds": self.hold_seconds,
            "entry_ttl_seconds": self.entry_ttl_seconds,
            "done_ttl_seconds": self.done_ttl_seconds,
            "tick_interval_seconds": self.tick_interval_seconds,
            "commit_interval_seconds": self.commit_interval_seconds,
            "route_retention_seconds": self.route_retention_seconds,
        }
        found += [f"{name} must be positive" for name, v in durations.items() if v <= 0]
        if self.entry_ttl_seconds <= self.hold_seconds:
            found.append("entry_ttl_seconds must be longer than hold_seconds")
        return found
