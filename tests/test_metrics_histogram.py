"""LoopHistogram against prometheus_client's own Histogram: the same observations must read
the same on /metrics, in both exposition formats."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gateway.metrics import Children, Metrics
from gateway.metrics_histogram import LoopHistogram

# _created holds the time a series was made, which differs between the two.
_CREATED = re.compile(rb"^(\w+_created(?:\{.*\})?) \S+$", re.MULTILINE)


def _exposed(registry: CollectorRegistry) -> tuple[bytes, bytes]:
    return tuple(  # type: ignore[return-value]
        _CREATED.sub(rb"\1 <created>", generate(registry))
        for generate in (generate_latest, generate_openmetrics)
    )


amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=20),
    st.sampled_from([0.0, 0.001, 0.0025, 10.0, -0.0]),
)
bucket_lists = (
    st.lists(
        st.floats(min_value=0, max_value=1e6) | st.just(math.inf),
        min_size=1,
        max_size=15,
        unique=True,
    )
    .map(sorted)
    .filter(lambda buckets: buckets != [math.inf])
)


@given(
    buckets=bucket_lists,
    labelnames=st.lists(
        st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), min_size=1, max_size=3, unique=True
    ).filter(lambda names: "le" not in names),
    data=st.data(),
)
def test_exposition_is_prometheus_clients_own(
    buckets: list[float], labelnames: list[str], data: st.DataObject
) -> None:
    values = st.tuples(*(st.sampled_from(["a", "b", 'q"\\\n', "é"]) for _ in labelnames))
    observations = data.draw(st.lists(st.tuples(values, amounts), max_size=40))
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        "smsc_x_seconds", "Help \\ text\n", labelnames, buckets=buckets, registry=theirs
    )
    loop = LoopHistogram(
        "smsc_x_seconds", "Help \\ text\n", labelnames, buckets=buckets, registry=ours
    )
    for labels, amount in observations:
        reference.labels(*labels).observe(amount)
        loop.labels(*labels).observe(amount)
    assert _exposed(ours) == _exposed(theirs)


def test_a_series_is_made_once_and_counts_where_prometheus_would() -> None:
    registry = CollectorRegistry()
    loop = LoopHistogram("smsc_y_seconds", "y", ["bind"], buckets=(0.5, 1), registry=registry)
    series = loop.labels("one")
    assert loop.labels("one") is series
    for amount in (0.0, 0.5, 0.75, 1.0, 2.0, math.nan):
        series.observe(amount)
    sample = registry.get_sample_value
    assert sample("smsc_y_seconds_bucket", {"bind": "one", "le": "0.5"}) == 2
    assert sample("smsc_y_seconds_bucket", {"bind": "one", "le": "1.0"}) == 4
    assert sample("smsc_y_seconds_bucket", {"bind": "one", "le": "+Inf"}) == 5
    assert sample("smsc_y_seconds_count", {"bind": "one"}) == 5
    assert math.isnan(sample("smsc_y_seconds_sum", {"bind": "one"}) or 0.0)


def test_wrong_labels_or_buckets_are_refused() -> None:
    loop = LoopHistogram("smsc_z", "z", ["a", "b"], buckets=(1,), registry=CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        loop.labels("only one")
    for labelnames, buckets, why in (
        ([], (1,), "label names"),
        (["le"], (1,), "label names"),
        (["a"], (2, 1), "sorted"),
        (["a"], (-1, 1), "not negative"),
        (["a"], (), "below"),
        (["a"], (math.inf,), "below"),
    ):
        with pytest.raises(ValueError, match=why):
            LoopHistogram("smsc_z", "z", labelnames, buckets=buckets, registry=CollectorRegistry())


def test_the_registry_knows_the_names_of_the_gateways_loop_histograms() -> None:
    """A second metric of the same name is refused, as between prometheus_client's own."""
    metrics = Metrics()
    for name in ("smsc_rate_wait_seconds", "smsc_kafka_publish_latency_seconds"):
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            Histogram(name, "again", ["x"], registry=metrics.registry)
    Children(metrics.kafka_publish_latency)("smsc.results").observe(0.003)
    count = metrics.registry.get_sample_value(
        "smsc_kafka_publish_latency_seconds_count", {"topic": "smsc.results"}
    )
    assert count == 1
