"""The correlator's Prometheus metrics, registered on the gateway's registry."""

from __future__ import annotations

from collections import Counter as Count
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from gateway.metrics import Children, Metrics

from .records import Step

# Submit to report: seconds for most DLRs, up to the provider's 24 h validity for the rest.
_LATENCY_BUCKETS = (1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 172800)


@dataclass(slots=True)
class Tally:
    """What a run of records did, summed, so metrics are updated once per batch."""

    joined: int = 0
    held: int = 0
    dead_lettered: Count[str] = field(default_factory=Count)
    expired_complete: int = 0
    expired_incomplete: int = 0
    latencies: list[tuple[float, bool]] = field(default_factory=list)
    routed: Count[str] = field(default_factory=Count)

    def add(self, step: Step) -> None:
        self.joined += step.joined
        self.held += step.held
        if step.dead_lettered:
            self.dead_lettered.update(step.dead_lettered)
        self.expired_complete += step.expired_complete
        self.expired_incomplete += step.expired_incomplete
        if step.latencies:
            self.latencies += step.latencies


class CorrelatorMetrics:
    """Joined, held, dead-lettered and expired reports; table sizes; report latency."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.joined = Counter(
            "smsc_correlator_reports_joined_total",
            "Delivery reports joined to their request and published as status events",
            registry=r,
        )
        self.held = Counter(
            "smsc_correlator_reports_held_total",
            "Delivery reports that arrived before their send result and had to wait",
            registry=r,
        )
        self.waiting = Gauge(
            "smsc_correlator_reports_waiting",
            "Delivery reports waiting for their send result now",
            registry=r,
        )
        self.dead_lettered = Counter(
            "smsc_correlator_dead_letters_total",
            "Records dead-lettered by the correlator, by reason",
            ["reason"],
            registry=r,
        )
        self.expired = Counter(
            "smsc_correlator_messages_expired_total",
            "Messages whose parts left the table, by whether every part had reported",
            ["complete"],
            registry=r,
        )
        self.table_entries = Gauge(
            "smsc_correlator_table_entries",
            "Entries in the correlator's table on this worker (one per SMS part)",
            ["table"],
            registry=r,
        )
        self.latency = Histogram(
            "smsc_correlator_report_latency_seconds",
            "From the accepted send result to the delivery report, by whether it was final",
            ["final"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.routed = Counter(
            "smsc_correlator_records_routed_total",
            "Records re-keyed by phone onto the route topic, by input",
            ["input"],
            registry=r,
        )
        self._dead = Children(self.dead_lettered)
        self.routed_from = Children(self.routed)
        self._parts_size = self.table_entries.labels("parts")
        self._latency = {True: self.latency.labels("true"), False: self.latency.labels("false")}

    def observe(self, tally: Tally) -> None:
        """Count what a run of records did, and start a new tally."""
        if tally.joined:
            self.joined.inc(tally.joined)
        if tally.held:
            self.held.inc(tally.held)
        for reason, count in tally.dead_lettered.items():
            self._dead(reason).inc(count)
        if tally.expired_complete:
            self.expired.labels("true").inc(tally.expired_complete)
        if tally.expired_incomplete:
            self.expired.labels("false").inc(tally.expired_incomplete)
        for seconds, final in tally.latencies:
            self._latency[final].observe(seconds)
        for topic, count in tally.routed.items():
            self.routed_from(topic).inc(count)

    def sizes(self, parts: int, held: int) -> None:
        self._parts_size.set(parts)
        self.waiting.set(held)
