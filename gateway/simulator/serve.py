"""``smsc-gateway simulate``: the provider as one process, SMPP and the HTTP API side by side.

Both serve the same accounts (the provider's login and password are the same for SMPP and
for the HTTP API) on the same host, each on its own port: ``port`` for SMPP (and
``tls_port``), ``http_api_port`` for the HTTP API scripts (send, status, balance, get.php,
wait_call.php, receive_phones.php, downloads.php, phones.php; None leaves it out). With
``http_api_webhook_url`` the HTTP API calls that handler as the provider would: statuses of
what was sent through it, incoming SMS, and subscribers' confirmation calls, which they
place by themselves ``http_api_call_after_seconds`` after being given a number. At
``http_api_incoming_rate_per_second`` made-up subscribers write to the account's number, for
the poller (get.php) and the handler to see.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AsyncExitStack

from gateway.settings.simulator import SimulatorSettings
from gateway.settings.simulator_desk import CallDeskSettings, InboxSettings
from gateway.settings.simulator_http_api import HttpApiSimulatorSettings

from .http_api import HttpApiSimulator
from .smpp_server import SmppSimulator

# What the made-up subscribers write (a keyword among them, for the opt-out).
_REPLIES = ("Yes", "No, thanks", "When will it arrive?", "STOP", "Спасибо!")


def http_api_settings(config: SimulatorSettings) -> HttpApiSimulatorSettings | None:
    """The HTTP API's settings drawn from the simulator's section; None when it is off."""
    if config.http_api_port is None:
        return None
    return HttpApiSimulatorSettings(
        host=config.host,
        port=config.http_api_port,
        accounts=config.accounts,
        seed=config.seed,
        status_delay_seconds=config.dlr_delay_seconds,
        webhook_url=config.http_api_webhook_url,
        inbox=InboxSettings(number=config.incoming_number),
        calls=CallDeskSettings(call_after_seconds=config.http_api_call_after_seconds),
    )


async def serve(
    config: SimulatorSettings, stop: asyncio.Event, announce: Callable[[str], None]
) -> None:
    """Serve until ``stop`` is set; ``announce`` is told each address once it listens."""
    async with AsyncExitStack() as stack:
        smpp = await stack.enter_async_context(SmppSimulator(config))
        announce(f"SMPP simulator listening on {config.host}:{smpp.port}")
        if smpp.tls_port is not None:
            announce(f"SMPP simulator listening with TLS on {config.host}:{smpp.tls_port}")
        api = await _start_http_api(stack, config, announce)
        rate = config.http_api_incoming_rate_per_second
        writing = None
        if api is not None and rate > 0:
            rng = random.Random(config.seed)
            writing = asyncio.create_task(_write_incoming(api, rate, rng))
        try:
            await stop.wait()
        finally:
            if writing is not None:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)


async def _start_http_api(
    stack: AsyncExitStack, config: SimulatorSettings, announce: Callable[[str], None]
) -> HttpApiSimulator | None:
    api_config = http_api_settings(config)
    if api_config is None:
        return None
    api = await stack.enter_async_context(HttpApiSimulator(api_config))
    announce(f"HTTP API simulator listening on {api.base_url}")
    return api


async def _write_incoming(api: HttpApiSimulator, per_second: float, rng: random.Random) -> None:
    """Made-up subscribers' SMS to the account, ``per_second`` of them; runs until cancelled."""
    while True:
        await asyncio.sleep(1.0 / per_second)
        api.receive_sms(f"7900{rng.randrange(10**7):07d}", rng.choice(_REPLIES))
