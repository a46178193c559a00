"""Fixtures shared by the whole suite: the real Kafka broker and event validation."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    """One real single-node KRaft broker for the whole run, started by the project's tooling."""
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


@pytest.fixture
def topics(kafka: LocalKafka) -> TopicSettings:
    """Topics of their own for one test, created with 3 partitions."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        f.name: f"{getattr(TopicSettings(), f.name)}.{suffix}"
        for f in dataclasses.fields(TopicSettings)
    }
    kafka.create_topics(list(names.values()), partitions=3)
    return TopicSettings(**names)
