"""The three-broker cluster the fault tests run on, started once for this directory.

Each test leaves the cluster whole for the next: the ``cluster`` fixture brings back any
broker a test took down, and waits until it is a full member again.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import pytest

from gateway.config import TopicSettings
from gateway.localkafka import LocalKafkaCluster


@pytest.fixture(scope="package")
def cluster_once() -> Iterator[LocalKafkaCluster]:
    started = time.monotonic()
    with LocalKafkaCluster(num_partitions=3) as cluster:
        print(f"\nthree-broker cluster up in {time.monotonic() - started:.1f} s")
        yield cluster


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
