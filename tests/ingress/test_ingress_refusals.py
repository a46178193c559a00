"""A callback refused at once: its answer and its ``outcome`` label, nothing published."""

from __future__ import annotations

import pytest

from gateway.ingress.handler import CallbackHandler, Settle
from gateway.ingress.health import WriteHealth
from gateway.ingress.metrics import OUTCOMES, IngressMetrics, Refusal
from gateway.metrics import Metrics
from gateway.settings import TopicSettings
from gateway.settings.ingress import IngressSettings


class NoPublisher:
    """A refusal publishes nothing: any offer fails the test."""

    def offer(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        raise AssertionError(f"published to {topic}")


@pytest.mark.parametrize(
    ("refusal", "label", "status", "body"),
    [
        (Refusal.SIGNATURE, "refused_signature", 403, b"forbidden\n"),
        (Refusal.UNSIGNED, "refused_unsigned", 403, b"forbidden\n"),
        (Refusal.NETWORK, "refused_network", 403, b"forbidden\n"),
        (Refusal.TOKEN, "refused_token", 403, b"forbidden\n"),
        (Refusal.TOO_LARGE, "too_large", 413, b"body too large\n"),
    ],
)
def test_a_refusal_gets_its_answer_and_counts_under_its_label(
    refusal: Refusal, label: str, status: int, body: bytes
) -> None:
    metrics = Metrics()
    handler = CallbackHandler(
        IngressSettings(),
        TopicSettings(),
        NoPublisher(),
        metrics=metrics,
        ingress_metrics=IngressMetrics(metrics.registry),
        health=WriteHealth(1.0),
    )
    answer = handler.refuse(refusal, "status")
    assert (answer.status, answer.body) == (status, body)
    sample = {"kind": "status", "outcome": label}
    assert metrics.registry.get_sample_value("smsc_ingress_callbacks_total", sample) == 1
    assert label in OUTCOMES
