"""What the poller's end-to-end tests share: the poller as a process against the HTTP API
simulator, the ingress beside it, and the events on Kafka, each validated."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from tests.e2e.test_send_path import free_port, vars_of
from tests.eventcheck import validate_event
from tests.http_api.httpapi_support import LOGIN, PASSWORD

# The simulator's and the client's "minute", shortened alike.
WINDOW_SECONDS = "1.0"


def poller_env(
    kafka: LocalKafka, topics: TopicSettings, base_url: str, **settings: str
) -> dict[str, str]:
    """The environment of a poller talking to the simulator at ``base_url``; ``settings``
    are more ``GATEWAY_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {f"GATEWAY_TOPICS_{name.upper()}": value for name, value in vars_of(topics).items()}
    env |= {
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GATEWAY_HTTP_API_BASE_URLS": base_url,
        "GATEWAY_HTTP_API_LOGIN": LOGIN,
        "GATEWAY_HTTP_API_PASSWORD": PASSWORD,
        "GATEWAY_HTTP_API_LIMIT_WINDOW_SECONDS": WINDOW_SECONDS,
        "GATEWAY_HTTP_API_RETRY_INITIAL_SECONDS": "0.05",
        "GATEWAY_HTTP_API_RETRY_MAX_SECONDS": "0.5",
        "GATEWAY_POLLER_CURSOR_REPLICATION_FACTOR": "1",
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(free_port()),
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    return env | settings


@asynccontextmanager
async def poller_process(env: dict[str, str], log: Path) -> AsyncIterator[PollerProcess]:
    """``smsc-gateway poller`` as a process, stopped with SIGTERM (or found killed) on exit."""
    process = PollerProcess(env, log)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


class PollerProcess:
    """A poller process that a test may kill and start again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.env["GATEWAY_HTTP_PORT"] = str(free_port())
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "poller", env=self.env, stdout=out, stderr=out
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing committed, no goodbye."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), 60)
        assert self.process.returncode == 0, self.tail()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class TopicWatcher:
    """Reads topics from their start in the background, validating every event."""

    def __init__(self, kafka: LocalKafka, *topics: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
        )
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatcher:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for message in (m for ms in batch.values() for m in ms):
                event = orjson.loads(message.value)
                validate_event(event)
                self.events.append(event)

    async def until(
        self, enough: Callable[[list[dict[str, Any]]], bool], wait_seconds: float = 60.0
    ) -> list[dict[str, Any]]:
        """The events once ``enough(events)``; raises TimeoutError when it never is."""
        deadline = time.monotonic() + wait_seconds
        while not enough(self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not enough events after {wait_seconds} s")
            await asyncio.sleep(0.05)
        return self.events
