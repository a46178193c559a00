"""The correlator's topics, created and checked before faust starts.

Co-partitioning: stage 2 consumes the route topic and writes both tables; faust writes a table
change to the changelog partition of the record being processed, and recovers a partition's
table from the same-numbered changelog partition. The route topic and both changelogs must
therefore have the same partition count, and the route topic's count must never change (it
would move phones to other partitions, away from their table entries). This module creates
them with ``partitions`` when missing and refuses to start when an existing one differs.
The inputs need no such check: stage 1 re-keys both of them, whatever their partitioning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gateway.errors import ConfigError, KafkaUnavailableError
from gateway.kafka.client import client_options
from gateway.settings import KafkaSettings
from gateway.settings.correlator import CorrelatorSettings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_WAIT_SECONDS = 2.0
COORDINATOR_WAIT_SECONDS = 60.0
_T = TypeVar("_T")


class CopartitioningError(ConfigError):
    """A topic the correlator owns has another partition count than the others."""


def owned_topic_configs(
    settings: CorrelatorSettings, changelogs: Sequence[str]
) -> dict[str, dict[str, str]]:
    """The configs of the topics the correlator creates, by name."""
    route = {
        "cleanup.policy": "delete",
        "retention.ms": str(int(settings.route_retention_seconds * 1000)),
    }
    return {settings.route_topic: route} | {
        name: {"cleanup.policy": "compact"} for name in changelogs
    }


def mismatches(counts: Mapping[str, int], expected: int) -> list[str]:
    """The owned topics whose partition count is not ``expected``."""
    return [f"{name} has {n} partitions" for name, n in sorted(counts.items()) if n != expected]


async def prepare_topics(
    kafka: KafkaSettings,
    settings: CorrelatorSettings,
    changelogs: Sequence[str],
    inputs: Sequence[str],
    stop: asyncio.Event,
) -> bool:
    """Create the owned topics, check co-partitioning, and wait for the inputs to exist.

    Returns False when ``stop`` was set while waiting. Raises CopartitioningError on a
    partition count mismatch and KafkaUnavailableError when Kafka cannot be reached.
    """
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        configs = owned_topic_configs(settings, changelogs)
        await _create_missing(admin, settings, configs)
        counts = await _partition_counts(admin, list(configs))
        wrong = mismatches(counts, settings.partitions)
        if wrong:
            raise CopartitioningError(_mismatch_message(counts, settings.partitions, wrong))
        return await _wait_for(admin, inputs, stop)
    except KafkaError as exc:
        raise KafkaUnavailableError(f"cannot prepare the correlator's topics: {exc}") from exc
    finally:
        await admin.close()


def _mismatch_message(counts: Mapping[str, int], expected: int, wrong: list[str]) -> str:
    message = (
        f"the route topic and the changelogs must all have {expected} partitions "
        f"(GATEWAY_CORRELATOR_PARTITIONS): {'; '.join(wrong)}"
    )
    existing = set(counts.values())
    if len(existing) == 1:  # created with another count, by an older default or setting
        message += (
            f". They were created with {existing.pop()}: set GATEWAY_CORRELATOR_PARTITIONS to "
            "that (the count of existing topics cannot change)"
        )
    return message


async def _create_missing(
    admin: Any, settings: CorrelatorSettings, configs: Mapping[str, dict[str, str]]
) -> None:
    existing = set(await admin.list_topics())
    new = [
        NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=config)
        for name, config in configs.items()
        if name not in existing
    ]
    if not new:
        return
    response = await admin.create_topics(new)
    failures = [
        f"{e[0]}: error {e[1]}"
        for e in response.topic_errors
        if e[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise ConfigError("cannot create the correlator's topics: " + "; ".join(failures))
    log.info("created topics %s", sorted(t.name for t in new))


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    for _ in range(50):  # creation is acknowledged before the metadata shows the partitions
        described = await admin.describe_topics(names)
        counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
        if len(counts) == len(names) and all(counts.values()):
            return counts
        await asyncio.sleep(0.2)
    raise KafkaUnavailableError(f"topics {names} did not become visible")


async def _wait_for(admin: Any, names: Sequence[str], stop: asyncio.Event) -> bool:
    warned = False
    while not stop.is_set():
        missing = set(names) - set(await admin.list_topics())
        if not missing:
            return True
        if not warned:
            log.warning("waiting for input topics to exist: %s", sorted(missing))
            warned = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _WAIT_SECONDS)
    return False


async def carry_over_offsets(
    kafka: KafkaSettings, source_group: str, target_group: str, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    """Give ``target_group`` the offsets ``source_group`` committed for ``topics``, unless it
    has offsets for them already; returns what was carried over.

    The route stage was a faust agent in the app's consumer group before it became a consumer
    group of its own (``<app_id>-route``): without its offsets, the first start after the
    upgrade would route the inputs' whole retention again, and every message whose entries
    expired since would be announced once more, as incomplete.
    """
    try:
        offsets = await _retrying(
            lambda: _offsets_to_carry(kafka, source_group, target_group, set(topics))
        )
        if offsets:
            consumer = AIOKafkaConsumer(
                **client_options(kafka), group_id=target_group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign(list(offsets))
                await consumer.commit(offsets)
            finally:
                await consumer.stop()
            log.info("route offsets carried over from %s to %s", source_group, target_group)
    except KafkaError as exc:
        raise KafkaUnavailableError(f"cannot carry the route offsets over: {exc}") from exc
    return offsets


async def _retrying(attempt: Callable[[], Awaitable[_T]]) -> _T:
    """``attempt()`` again while Kafka answers with a retriable error (a fresh cluster has no
    group coordinator for a few seconds), for at most COORDINATOR_WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + COORDINATOR_WAIT_SECONDS
    while True:
        try:
            return await attempt()
        except KafkaError as exc:
            if not exc.retriable or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(_WAIT_SECONDS / 4)


async def _offsets_to_carry(
    kafka: KafkaSettings, source_group: str, target_group: str, topics: set[str]
) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        target = await admin.list_consumer_group_offsets(target_group)
        if any(tp.topic in topics and meta.offset >= 0 for tp, meta in target.items()):
            return {}
        source = await admin.list_consumer_group_offsets(source_group)
    finally:
        await admin.close()
    return {
        tp: meta.offset for tp, meta in source.items() if tp.topic in topics and meta.offset >= 0
    }
