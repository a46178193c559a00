"""``smsc-gateway simulate``: the SMSC simulator (SMPP and the HTTP API), for tests and demos."""

from __future__ import annotations

import asyncio

from gateway.metrics import Metrics
from gateway.settings import Settings, require_role


async def run_simulator(settings: Settings, _: Metrics, stop: asyncio.Event) -> None:
    """Run the SMSC simulator (SMPP and the HTTP API) until ``stop`` is set."""
    require_role(settings, "simulate")
    from gateway.simulator.serve import serve  # noqa: PLC0415 - not a prod role

    await serve(settings.simulator, stop, lambda line: print(line, flush=True))
