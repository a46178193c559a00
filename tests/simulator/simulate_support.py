"""``smsc-gateway simulate`` as a process, for the tests that need the provider outside theirs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping

START_SECONDS = 30.0
STOP_SECONDS = 10.0


@contextlib.asynccontextmanager
async def simulate_process(settings: Mapping[str, str]) -> AsyncIterator[tuple[int, str]]:
    """``smsc-gateway simulate`` with ``settings`` (``GATEWAY_*``): its SMPP port and its HTTP
    API's base URL once both listen; stopped with SIGTERM on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | dict(settings)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway", "simulate"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield await asyncio.wait_for(_addresses(process), START_SECONDS)
    finally:
        await stop_process(process)


async def _addresses(process: asyncio.subprocess.Process) -> tuple[int, str]:
    assert process.stdout is not None
    smpp, http = None, None
    while smpp is None or http is None:
        line = (await process.stdout.readline()).decode()
        assert line, "simulate exited before it listened"
        if line.startswith("SMPP simulator listening on "):
            smpp = int(line.rsplit(":", 1)[1])
        elif line.startswith("HTTP API simulator listening on "):
            http = line.split(" on ", 1)[1].strip()
    return smpp, http


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it has not ended within STOP_SECONDS."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
