from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from gateway.simulator import SimulatorSettings, SmppSimulator

from .esme import Esme


def fast_config(**overrides: Any) -> SimulatorSettings:
    """The default config with timers short enough for tests, and ``overrides`` applied.

    The rate limit is off (tests that are not about it submit as fast as they can); the
    duplicate, flood and login rules stay on as the provider has them.
    """
    fast = SimulatorSettings(
        dlr_delay_seconds=0.05,
        dlr_retry_seconds=0.05,
        incoming_retry_seconds=0.05,
        response_timeout_seconds=1.0,
        rate_limit_per_second=None,
    )
    return dataclasses.replace(fast, **overrides)


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[SmppSimulator]]]:
    """Start simulators with fast timers (override any config field); stopped at teardown."""
    started: list[SmppSimulator] = []

    async def make(**overrides: Any) -> SmppSimulator:
        sim = SmppSimulator(fast_config(**overrides))
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: Callable[..., Awaitable[SmppSimulator]]) -> SmppSimulator:
    return await make_sim()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[Esme]]]:
    """Open test ESMEs to a port; closed at teardown."""
    opened: list[Esme] = []

    async def open_esme(port: int, **kwargs: Any) -> Esme:
        esme = await Esme.connect(port, **kwargs)
        opened.append(esme)
        return esme

    yield open_esme
    for esme in opened:
        await esme.close()


class CertFiles(NamedTuple):
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS tests need the openssl command"
    folder = tmp_path_factory.mktemp("tls")
    files = CertFiles(folder / "cert.pem", folder / "key.pem")
    arguments = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ]
    outputs = ["-keyout", str(files.key), "-out", str(files.cert)]
    subprocess.run([openssl, *arguments, *outputs], check=True, capture_output=True)
    return files
