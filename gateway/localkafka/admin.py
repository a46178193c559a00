"""Talking to the broker: readiness by metadata, and topic creation, from sync code."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gateway.localkafka.process import LocalKafkaError

NODE_ID = 1
PROBE_INTERVAL_SECONDS = 0.2
_TOPIC_ALREADY_EXISTS = 36

_T = TypeVar("_T")


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    The helper thread lets the synchronous API be called from inside a running event loop
    (async tests), where ``asyncio.run`` would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def broker_answers(bootstrap_servers: str, timeout_seconds: float) -> bool:
    """Whether the broker answers a metadata request listing itself as an available broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return any(broker["node_id"] == NODE_ID for broker in cluster["brokers"])


async def create_topics(
    bootstrap_servers: str, names: list[str], partitions: int, timeout_seconds: float
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            response = await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
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
