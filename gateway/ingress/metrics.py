"""The ingress's Prometheus metrics, on the registry of the process's ``Metrics``.

Labels are bounded: kind (status, incoming, waitcall, unknown), outcome, algorithm, reason.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.metrics import Children

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Refusal(StrEnum):
    """Why a callback is answered at once and nothing is published; the value is its
    ``outcome`` label."""

    SIGNATURE = "refused_signature"  # 403
    UNSIGNED = "refused_unsigned"  # 403
    NETWORK = "refused_network"  # 403
    TOKEN = "refused_token"  # noqa: S105 - a label, not a secret; 403
    TOO_LARGE = "too_large"  # 413


# Outcomes of a callback, each with the answer it gets (docs/ingress.md explains them).
OUTCOMES = (
    "published",  # 200
    "dead_lettered",  # 400
    *Refusal,  # 403, 413
    "kafka_unavailable",  # 503
)


class IngressMetrics:
    """Callbacks by kind and outcome, signature failures, publish latency, Kafka writability."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.callbacks = Counter(
            "smsc_ingress_callbacks_total",
            "Provider callbacks by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.signature_failures = Counter(
            "smsc_ingress_signature_failures_total",
            "Callbacks refused for their signature: a mismatch, or none where one is required",
            ["algorithm", "reason"],
            registry=registry,
        )
        self.unsigned_accepted = Counter(
            "smsc_ingress_unsigned_accepted_total",
            "Callbacks taken without a verified signature (unsigned_policy=accept)",
            ["kind"],
            registry=registry,
        )
        self.publish_latency = Histogram(
            "smsc_ingress_publish_latency_seconds",
            "Time from a callback's event handed to Kafka to its acknowledgement",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.kafka_writable = Gauge(
            "smsc_ingress_kafka_writable",
            "1 while Kafka takes the ingress's writes (what /readyz reports), else 0",
            registry=registry,
        )
        self.outcome = Children(self.callbacks)
        self.latency = Children(self.publish_latency)
