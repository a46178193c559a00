"""What the receiver's end-to-end tests share: the role as a process, and reading its events."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.localkafka import RunningKafka
from gateway.settings import TopicSettings
from tests.e2e.test_send_path import free_port, sender_env


def receiver_env(
    kafka: RunningKafka, topics: TopicSettings, smpp_port: int, password: str
) -> dict[str, str]:
    """The environment of ``smsc-gateway receiver`` bound to the simulator on ``smpp_port``."""
    env = sender_env(kafka, topics, smpp_port, free_port(), "unused")
    return env | {
        "GATEWAY_SMPP_PASSWORD": password,
        "GATEWAY_RECEIVER_PROBE_PORT": str(free_port()),
        "GATEWAY_LOG_LEVEL": "WARNING",
    }


async def start_receiver(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "receiver", env=env, stdout=out, stderr=out
        )
