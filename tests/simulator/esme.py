"""An ESME for the simulator tests, built on the project's own Session and SmppConnection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import BindTransceiver, DeliverSm, DeliverSmResp, Pdu, SubmitSm
from gateway.smpp.session import Role, Session, SessionSettings
from gateway.smpp_io.smpp_connection import SmppConnection

# What the ESME answers to a deliver_sm: a command_status, or None to leave it unanswered.
Answer = Callable[[DeliverSm], int | None]
SYSTEM_ID = "gateway"
PASSWORD = "secret"  # the simulator's default account


def always_ok(pdu: DeliverSm) -> int | None:
    return CommandStatus.ESME_ROK


class Esme:
    """A test client: binds, submits, and queues every deliver_sm it receives."""

    def __init__(self, answer: Answer = always_ok) -> None:
        self.answer = answer
        self.received: asyncio.Queue[DeliverSm] = asyncio.Queue()
        self.conn: SmppConnection
        self.task: asyncio.Task[None]

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        answer: Answer = always_ok,
        enquire_link_interval_seconds: float | None = None,
        response_timeout_seconds: float = 2.0,
        tls: ssl.SSLContext | None = None,
    ) -> Esme:
        esme = cls(answer)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        config = SessionSettings(
            window=10,
            response_timeout_seconds=response_timeout_seconds,
            enquire_link_interval_seconds=enquire_link_interval_seconds,
        )
        session = Session(Role.ESME, config, asyncio.get_running_loop().time())
        esme.conn = SmppConnection(session, reader, writer, esme._on_request, name="test-esme")
        esme.task = asyncio.create_task(esme.conn.run())
        return esme

    async def bind(
        self,
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        cls: type[Pdu] = BindTransceiver,
        system_type: str = "",
    ) -> Pdu:
        bind = cls(system_id=system_id, password=password, system_type=system_type)  # type: ignore[call-arg]
        return await self.conn.request(bind)

    async def submit(self, **fields: object) -> Pdu:
        defaults: dict[str, object] = {
            "source_addr_ton": 5,
            "source_addr": "SENDER",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "79991234567",
            "short_message": b"hello",
        }
        return await self.conn.request(SubmitSm(**(defaults | fields)))  # type: ignore[arg-type]

    async def next_deliver(self, wait_seconds: float = 3.0) -> DeliverSm:
        return await asyncio.wait_for(self.received.get(), wait_seconds)

    async def close(self) -> None:
        self.conn.abort("test done")
        await self.task

    def _on_request(self, pdu: Pdu) -> None:
        assert isinstance(pdu, DeliverSm)
        self.received.put_nowait(pdu)
        status = self.answer(pdu)
        if status is not None:
            self.conn.respond(pdu, DeliverSmResp(command_status=status))
