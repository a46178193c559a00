"""Running ``smsc-gateway`` account commands as processes against the simulator."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.simulator.http_api import HttpApiSimulator
from tests.http_api.httpapi_support import LOGIN, PASSWORD


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    raw_out: bytes

    def json(self) -> object:
        return orjson.loads(self.raw_out)

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def cli_env(sim: HttpApiSimulator, **extra: str) -> dict[str, str]:
    """The environment of a command talking to ``sim`` on its 1 s "minute"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_HTTP_API_BASE_URLS": sim.base_url,
        "GATEWAY_HTTP_API_LOGIN": LOGIN,
        "GATEWAY_HTTP_API_PASSWORD": PASSWORD,
        "GATEWAY_HTTP_API_LIMIT_WINDOW_SECONDS": "1",
        "GATEWAY_HTTP_API_RETRY_INITIAL_SECONDS": "0.01",
        "GATEWAY_HTTP_API_RETRY_MAX_SECONDS": "0.05",
        **extra,
    }


async def start_cli(sim: HttpApiSimulator, *argv: str) -> asyncio.subprocess.Process:
    """``smsc-gateway *argv`` started, its output piped, for a test that follows it."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(sim),
    )


async def cli(
    sim: HttpApiSimulator,
    *argv: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Ran:
    """``smsc-gateway *argv`` run to its end, with ``stdin`` as its input."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or cli_env(sim),
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode(), out)
