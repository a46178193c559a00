"""The HTTP API's and the poller's Prometheus metrics, registered on the gateway's registry.

One set per registry (a second set on the same registry is refused by prometheus_client):
a process running several roles builds it once and hands it to each (``gateway.roles.all``).
Labels are bounded: script, outcome, error code, credential (the login, or ``apikey``), reason.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.metrics import Children, Metrics

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HttpApiMetrics:
    """See the module docstring; ``metrics`` is the gateway's own set (for its registry)."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.requests = Children(
            Counter(
                "smsc_http_requests_total",
                "HTTP API requests by script and outcome (ok, api_error, transport_error)",
                ["script", "outcome"],
                registry=r,
            )
        )
        self.latency = Children(
            Histogram(
                "smsc_http_request_duration_seconds",
                "Time from sending an HTTP API request to its answer",
                ["script"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.api_errors = Children(
            Counter(
                "smsc_http_api_errors_total",
                "error_code answers by script and code",
                ["script", "code"],
                registry=r,
            )
        )
        self.retries = Children(
            Counter(
                "smsc_http_retries_total",
                "HTTP API calls attempted again, by script and reason",
                ["script", "reason"],
                registry=r,
            )
        )
        self._circuit = Gauge(
            "smsc_http_circuit_state",
            "Per credential: 0 closed, 1 open (IP blocked or login refused), 2 parked (no money)",
            ["credential"],
            registry=r,
        )
        self.balance = Children(
            Gauge(
                "smsc_http_balance",
                "The account balance last reported by the provider",
                ["credential"],
                registry=r,
            )
        )
        self.ambiguous = Children(
            Counter(
                "smsc_http_ambiguous_sends_total",
                "Sends whose first answer was lost, by how status.php resolved them",
                ["resolution"],
                registry=r,
            )
        )
        self._poller(r)

    def _poller(self, r: CollectorRegistry) -> None:
        self.poller_pending = Gauge(
            "smsc_poller_pending_messages",
            "Messages accepted without a final report, tracked by the poller",
            registry=r,
        )
        self.poller_reports = Children(
            Counter(
                "smsc_poller_reports_total",
                "Reports published from status queries, by normalized status",
                ["status"],
                registry=r,
            )
        )
        self.poller_incoming = Counter(
            "smsc_poller_incoming_total",
            "Incoming SMS published from get.php?get_answers (repeats after a restart included)",
            registry=r,
        )
        self.poller_incoming_cursor = Gauge(
            "smsc_poller_incoming_cursor",
            "The provider id of the last incoming SMS the poller published up to",
            registry=r,
        )
        self.poller_dropped = Children(
            Counter(
                "smsc_poller_dropped_total",
                "Pending messages dropped unresolved: evicted (memory bound) or expired (age)",
                ["reason"],
                registry=r,
            )
        )

    def watch_circuit(self, credential: str, state: Callable[[], float]) -> None:
        """Report ``state()`` (a :class:`~gateway.http_api.circuit.CircuitState`) per scrape."""
        self._circuit.labels(credential).set_function(state)
