"""Several binds of one account, used as one submitter.

With ``system_type`` MCONn the provider accepts up to n simultaneous connections per login
(SMPP seed, "Multiple connections"). Each submit goes to the bound connection with the most
room in its window; while none is bound, submits wait a bounded time for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway.smpp.errors import ConnectionClosedError
from gateway.smpp.pdu import SubmitSm, SubmitSmResp

from .smpp_client import PendingSubmit, SmppClient


class SmppPool:
    """Spreads submits over ``clients``; runs and stops them together."""

    def __init__(self, clients: Sequence[SmppClient], wait_bound_seconds: float) -> None:
        if not clients:
            raise ValueError("a pool needs at least one bind")
        self.clients = tuple(clients)
        self._wait_bound = wait_bound_seconds

    @property
    def bound(self) -> int:
        return sum(client.bound for client in self.clients)

    async def run(self) -> None:
        """Keep every bind up until :meth:`stop`."""
        async with asyncio.TaskGroup() as group:
            for client in self.clients:
                group.create_task(client.run(), name=f"{client.name}-run")

    def submit(self, pdu: SubmitSm, *, urgent: bool = False) -> Coroutine[Any, Any, SubmitSmResp]:
        """The bound client's submit (see :meth:`SmppClient.submit`); while none is bound, a
        bounded wait for one first."""
        clients = self.clients
        if len(clients) == 1:
            client: SmppClient | None = clients[0] if clients[0].bound else None
        else:
            bound = [client for client in clients if client.bound]
            client = max(bound, key=lambda c: c.window_free) if bound else None
        if client is None:
            return self._submit_once_bound(pdu, urgent)
        return client.submit(pdu, urgent=urgent)

    def ready(self, *, urgent: bool = False) -> Callable[[SubmitSm], PendingSubmit] | None:
        """The bind :meth:`submit` would use, if it sends at once (:meth:`SmppClient.ready`)."""
        clients = self.clients
        if len(clients) == 1:
            return clients[0].ready(urgent=urgent)
        bound = [client for client in clients if client.bound]
        if not bound:
            return None
        return max(bound, key=lambda c: c.window_free).ready(urgent=urgent)

    async def _submit_once_bound(self, pdu: SubmitSm, urgent: bool) -> SubmitSmResp:
        client = await self._any_bound()
        return await client.submit(pdu, urgent=urgent)

    async def stop(self) -> None:
        """Drain and unbind every bind."""
        await asyncio.gather(*(client.stop() for client in self.clients))

    async def _any_bound(self) -> SmppClient:
        waits = [asyncio.ensure_future(c.wait_bound(self._wait_bound)) for c in self.clients]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        for client in self.clients:
            if client.bound:
                return client
        raise ConnectionClosedError("no bind is up")
