"""Talking to the brokers: readiness by metadata, topic creation and leaders, from sync code."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gateway.localkafka.process import LocalKafkaError

PROBE_INTERVAL_SECONDS = 0.2
_TOPIC_ALREADY_EXISTS = 36

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A partition as the metadata shows it: its leader's id (-1: none) and in-sync replicas."""

    leader: int
    isr: tuple[int, ...]


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    The helper thread lets the synchronous API be called from inside a running event loop
    (async tests), where ``asyncio.run`` would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def available_brokers(bootstrap_servers: str, timeout_seconds: float) -> set[int]:
    """The node ids of the brokers a metadata answer lists as available (in KRaft: registered
    and not fenced); empty when no broker answers within the timeout."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return set()
    finally:
        await admin.close()
    return {int(broker["node_id"]) for broker in cluster["brokers"]}


async def create_topics(
    bootstrap_servers: str,
    names: list[str],
    partitions: int,
    timeout_seconds: float,
    replication_factor: int = 1,
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            new = [NewTopic(name, partitions, replication_factor) for name in names]
            response = await admin.create_topics(new)
            failures = [
                f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}".rstrip()
                for error in response.topic_errors
                if error[1] not in (0, _TOPIC_ALREADY_EXISTS)
            ]
            if failures:
                raise LocalKafkaError("creating topics failed: " + "; ".join(failures))
            # Creation is acknowledged before leaders are elected; producers started right
            # away would otherwise see transient errors.
            while True:
                if await _all_have_leaders(admin, names):
                    return
                await asyncio.sleep(PROBE_INTERVAL_SECONDS)
    except (KafkaError, TimeoutError) as exc:
        raise LocalKafkaError(f"creating topics {names} failed: {exc!r}") from exc
    finally:
        await admin.close()


async def _all_have_leaders(admin: Any, names: list[str]) -> bool:
    topics = await admin.describe_topics(names)
    return len(topics) == len(names) and all(
        topic["error_code"] == 0
        and topic["partitions"]
        and all(partition["leader"] >= 0 for partition in topic["partitions"])
        for topic in topics
    )


async def partition_states(
    bootstrap_servers: str, topics: list[str] | None, timeout_seconds: float
) -> dict[tuple[str, int], PartitionState]:
    """Each partition of ``topics`` (None: of every topic) by (topic, number), as the
    metadata says now.

    A broker that just died can still be the one asked, and a topic being created has no
    leader yet; the question is then put again (to another broker) until the timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        try:
            return await _partition_states(bootstrap_servers, topics, deadline - loop.time())
        except (KafkaError, OSError, TimeoutError, LocalKafkaError) as exc:
            if loop.time() + PROBE_INTERVAL_SECONDS >= deadline:
                what = topics or "the topics"
                raise LocalKafkaError(f"describing {what} failed: {exc!r}") from exc
        await asyncio.sleep(PROBE_INTERVAL_SECONDS)


async def _partition_states(
    bootstrap_servers: str, topics: list[str] | None, timeout_seconds: float
) -> dict[tuple[str, int], PartitionState]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    failed = [f"{t['topic']}: error {t['error_code']}" for t in described if t["error_code"]]
    if failed:
        raise LocalKafkaError("describing topics failed: " + "; ".join(failed))
    return {
        (t["topic"], int(p["partition"])): PartitionState(
            int(p["leader"]), tuple(int(n) for n in p["isr"])
        )
        for t in described
        for p in t["partitions"]
    }
