"""The gateway's Prometheus metrics, built on a registry the composition root owns."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Generic, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from gateway.metrics_histogram import LoopHistogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the gateway exports. Labels are bounded: role, bind, status names."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_* (CPU, resident memory, open files, start time) and python_info, as the
        # default registry has them; this registry is the composition root's own.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "smsc_build_info",
            "Always 1: the gateway's version and the Python it runs on",
            ["version", "python_version"],
            registry=r,
        )
        self.build_info.labels(_version(), platform.python_version()).set(1)
        self.kafka_consumer_lag = Gauge(
            "smsc_kafka_consumer_lag",
            "Records in a partition past the consumer group's committed offset, for the "
            "partitions this process consumes",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.smpp_submits = Counter(
            "smsc_smpp_submits_total",
            "submit_sm responses by command status",
            ["bind", "command_status"],
            registry=r,
        )
        self.smpp_submit_latency = Histogram(
            "smsc_smpp_submit_latency_seconds",
            "Time from submit_sm written to submit_sm_resp received",
            ["bind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.smpp_window_in_use = Gauge(
            "smsc_smpp_window_in_use",
            "Requests awaiting a response",
            ["bind"],
            registry=r,
        )
        self.smpp_window_size = Gauge(
            "smsc_smpp_window_size", "Configured window of a bind", ["bind"], registry=r
        )
        self.smpp_bound = Gauge(
            "smsc_smpp_bound", "1 while the bind is up, 0 otherwise", ["bind"], registry=r
        )
        self.smpp_binds = Counter(
            "smsc_smpp_bind_attempts_total",
            "Bind attempts by outcome",
            ["bind", "outcome"],
            registry=r,
        )
        self.smpp_deliver_sm = Counter(
            "smsc_smpp_deliver_sm_total",
            "deliver_sm received, by kind and the status answered",
            ["bind", "kind", "command_status"],
            registry=r,
        )
        self.smpp_delivery_reports = Counter(
            "smsc_smpp_delivery_reports_total",
            "Delivery reports and HLR results from DELIVER_SM stored on Kafka, by receipt stat",
            ["kind", "stat"],
            registry=r,
        )
        self.smpp_delivery_errors = Counter(
            "smsc_smpp_delivery_errors_total",
            "Delivery reports stored on Kafka by the provider's err code and its name",
            ["err", "err_name"],
            registry=r,
        )
        self.send_requests = Counter(
            "smsc_send_requests_total", "Send requests consumed, by topic", ["topic"], registry=r
        )
        self.send_results = Counter(
            "smsc_send_results_total", "Send results published, by outcome", ["outcome"], registry=r
        )
        self.send_retries = Counter(
            "smsc_send_retries_total", "Submits attempted again, by reason", ["reason"], registry=r
        )
        self.dead_letters = Counter(
            "smsc_dead_letters_total",
            "Records dead-lettered",
            ["reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            "smsc_sender_in_flight_requests",
            "Requests being processed",
            registry=r,
        )
        # Observed for every result the sender publishes, as is rate_wait: see
        # gateway/metrics_histogram.py for what a LoopHistogram saves there.
        self.kafka_publish_latency = LoopHistogram(
            "smsc_kafka_publish_latency_seconds",
            "Time for Kafka to acknowledge a published event",
            ["topic"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.kafka_publish_errors = Counter(
            "smsc_kafka_publish_errors_total",
            "Publishes not acknowledged",
            ["topic"],
            registry=r,
        )
        self.kafka_producer_replacements = Counter(
            "smsc_kafka_producer_replacements_total",
            "Producers replaced after a batch failed (their idempotent sequence broke), "
            "by the error that failed it",
            ["error"],
            registry=r,
        )
        self.rate_allowed = Gauge(
            "smsc_rate_allowed_per_second",
            "SMS parts per second the sender currently allows itself, per account",
            ["account"],
            registry=r,
        )
        self.rate_throttled = Counter(
            "smsc_rate_throttled_total",
            "Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) from the provider",
            ["account"],
            registry=r,
        )
        self.rate_cuts = Counter(
            "smsc_rate_cuts_total", "Times the allowed rate was cut", ["account"], registry=r
        )
        self.rate_wait = LoopHistogram(
            "smsc_rate_wait_seconds",
            "Time a message waited for its permits at the rate gate",
            ["priority"],
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.guard_prevented = Counter(
            "smsc_guard_prevented_total",
            "Messages the duplicate or flood guard rejected or delayed; rule provider_duplicate: "
            "parts not sent again, refused as duplicates of an earlier submit",
            ["rule", "action"],
            registry=r,
        )
        self.send_skipped = Counter(
            "smsc_send_requests_skipped_total",
            "Send requests not sent again because their outcome is already recorded",
            ["reason"],
            registry=r,
        )
        self.smpp_reconnects = Counter(
            "smsc_smpp_reconnects_total",
            "Connections lost and re-established",
            ["bind"],
            registry=r,
        )
        self.smpp_binds_cut_short = Counter(
            "smsc_smpp_binds_cut_short_total",
            "Binds lost within 30 s of being made: another connection on the same login "
            "knocks them off when replicas x binds exceed the account's MCONn",
            ["bind"],
            registry=r,
        )
        self.kafka_commits = Counter(
            "smsc_kafka_commits_total", "Offset commits by outcome", ["outcome"], registry=r
        )
        self.reassembly_parts = Counter(
            "smsc_reassembly_parts_total",
            "Parts of concatenated incoming SMS read for reassembly, by outcome "
            "(added, duplicate, unreadable)",
            ["outcome"],
            registry=r,
        )
        self.reassembly_messages = Counter(
            "smsc_reassembly_messages_total",
            "Concatenated incoming SMS published, by outcome (complete, timed_out: partial "
            "after the timeout, superseded: partial, its reference reused)",
            ["outcome"],
            registry=r,
        )
        self.reassembly_pending = Gauge(
            "smsc_reassembly_pending_messages",
            "Concatenated incoming SMS waiting for parts",
            registry=r,
        )


def _version() -> str:
    try:
        return metadata.version("smsc-gateway")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)


class Labelled(Protocol[M_co]):
    """A metric with labels: prometheus_client's, or a :class:`LoopHistogram`."""

    def labels(self, *labelvalues: str) -> M_co: ...


class Children(Generic[M]):
    """The labelled children of one metric, each looked up once.

    ``labels()`` validates and locks on every call; on a per-message path that costs more
    than the measurement itself, so hot paths keep their children here.
    """

    def __init__(self, metric: Labelled[M]) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child
