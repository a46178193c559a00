"""The call confirmation's Prometheus metrics, registered on the gateway's registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gateway.metrics import Children, Metrics

_LATENCY_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)


class CallConfirmMetrics:
    """Outcomes by kind, confirmations pending, how long subscribers take to call, and calls
    that matched no pending confirmation."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.outcomes = Children(
            Counter(
                "smsc_call_confirm_outcomes_total",
                "Confirmation requests ended, by kind (confirmed, expired, rejected, failed)",
                ["kind"],
                registry=r,
            )
        )
        self.issued = Counter(
            "smsc_call_confirm_numbers_issued_total",
            "Numbers wait_call.php gave for confirmation requests",
            registry=r,
        )
        self.pending = Gauge(
            "smsc_call_confirm_pending",
            "Confirmations waiting for the subscriber's call",
            registry=r,
        )
        self.latency = Histogram(
            "smsc_call_confirm_latency_seconds",
            "From the number given to the subscriber's call, for confirmed requests",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.unmatched_calls = Gauge(
            "smsc_call_confirm_unmatched_calls",
            "Calls read that matched no pending confirmation, since start",
            registry=r,
        )
