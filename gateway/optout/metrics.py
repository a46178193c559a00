"""The opt-out's Prometheus metrics, registered once per registry (:meth:`OptOutMetrics.of`).

``smsc_optout_total{outcome}``: keyword SMS by what came of them (``blacklisted``,
``failed``, ``replayed``: already acted on, not sent to the provider again);
``smsc_optout_retries_total{reason}``: provider calls and publishes tried again.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

from prometheus_client import Counter

from gateway.metrics import Children, Metrics


class OptOutMetrics:
    """See the module docstring."""

    _built: ClassVar[weakref.WeakKeyDictionary[Metrics, OptOutMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def of(cls, metrics: Metrics) -> OptOutMetrics:
        built = cls._built.get(metrics)
        if built is None:
            built = cls._built[metrics] = cls(metrics)
        return built

    def __init__(self, metrics: Metrics) -> None:
        self.outcomes = Children(
            Counter(
                "smsc_optout_total",
                "Opt-out keyword SMS by outcome (blacklisted, failed, replayed)",
                ["outcome"],
                registry=metrics.registry,
            )
        )
        self.retries = Children(
            Counter(
                "smsc_optout_retries_total",
                "Opt-out blacklist calls and publishes tried again, by reason",
                ["reason"],
                registry=metrics.registry,
            )
        )
