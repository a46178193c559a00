"""The three-broker cluster the fault tests run on, started once for this directory.

Each test leaves the cluster whole for the next: the ``cluster`` fixture brings back any
broker a test took down, and waits until it is a full member again. The figures the tests
report (failover times, requests submitted twice, ...) are printed at the end of the run's
summary, so CI logs keep them without ``-s``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.localkafka import LocalKafkaCluster
from gateway.settings import TopicSettings
from tests.cluster.rolekit import Figures

_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="package")
def cluster_once(request: pytest.FixtureRequest) -> Iterator[LocalKafkaCluster]:
    started = time.monotonic()
    with LocalKafkaCluster(num_partitions=3) as cluster:
        line = f"three-broker cluster up in {time.monotonic() - started:.1f} s"
        request.config.stash.setdefault(_FIGURES, []).append(line)
        yield cluster


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Report one line of a test's figures: printed now and in the run's summary."""
    lines = request.config.stash.setdefault(_FIGURES, [])

    def report(line: str) -> None:
        print(line)
        lines.append(f"{request.node.name}: {line}")

    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("figures of the fault tests on the three-broker cluster")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def cluster(cluster_once: LocalKafkaCluster) -> Iterator[LocalKafkaCluster]:
    """The cluster with every broker running; brokers a test stopped are started after it."""
    cluster_once.start()
    yield cluster_once
    for broker_id in cluster_once.broker_ids:
        cluster_once.start_broker(broker_id)
    cluster_once.wait_in_sync()


@pytest.fixture
def cluster_topics(cluster: LocalKafkaCluster) -> TopicSettings:
    """Topics of their own for one test: 3 partitions, a replica on every broker."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        f.name: f"{getattr(TopicSettings(), f.name)}.{suffix}"
        for f in dataclasses.fields(TopicSettings)
    }
    cluster.create_topics(list(names.values()), partitions=3)
    return TopicSettings(**names)
