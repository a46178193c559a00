from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.simulator import SimulatorConfig, SmppSimulator

from .esme import Esme


def fast_config(**overrides: Any) -> SimulatorConfig:
    """The default config with timers short enough for tests, and ``overrides`` applied."""
    fast = SimulatorConfig(
        dlr_delay_seconds=0.05, dlr_retry_seconds=0.05, response_timeout_seconds=1.0
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
