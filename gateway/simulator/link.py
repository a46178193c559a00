"""One ESME connection to the simulator, plain or TLS: answers its requests and, once bound
as a receiver or transceiver, delivers the reports and incoming SMS owed to its account."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from gateway.settings.simulator import SimulatorSettings
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import ConnectionClosedError, ResponseTimeoutError, SessionStateError
from gateway.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
)
from gateway.smpp.session import BOUND_STATES, Role, Session, SessionSettings, State
from gateway.smpp_io.smpp_connection import SmppConnection

from .faults import Faults
from .logins import BindFlags
from .outbox import Pending
from .smsc import DeliveryResult, MessageCentre

log = logging.getLogger(__name__)

_BIND_RESPONSES: dict[type[Pdu], Callable[..., Pdu]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
}
_RECEIVING = frozenset({State.BOUND_RX, State.BOUND_TRX})
_Bind = BindTransmitter | BindReceiver | BindTransceiver


def session_settings(config: SimulatorSettings) -> SessionSettings:
    # The provider never sends enquire_link itself; it cuts a client idle for 2 minutes.
    return SessionSettings(
        window=config.window,
        response_timeout_seconds=config.response_timeout_seconds,
        enquire_link_interval_seconds=None,
        inactivity_timeout_seconds=config.inactivity_timeout_seconds,
        max_frame_size=config.max_frame_size,
    )


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class Link:
    """One connection; ``on_bound`` is told once it is bound (the login rules live there).

    Reports and incoming SMS go out up to ``window`` at a time. Answers delayed by the
    delay fault wait in timer handles that die with the connection.
    """

    def __init__(
        self,
        centre: MessageCentre,
        faults: Faults,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        on_bound: Callable[[Link], None],
    ) -> None:
        reader, writer = streams
        self.peer = _peer_name(writer)
        self.system_id = ""
        self.flags = BindFlags()
        self._centre = centre
        self._faults = faults
        self._on_bound = on_bound
        loop = asyncio.get_running_loop()
        session = Session(Role.SMSC, session_settings(centre.config), loop.time())
        self.conn = SmppConnection(
            session, reader, writer, self._on_request, name=f"simulator {self.peer}"
        )
        self._tasks: asyncio.TaskGroup | None = None
        self._pump: asyncio.Task[None] | None = None
        self._delayed: dict[int, asyncio.TimerHandle] = {}
        self._delay_keys = itertools.count()

    @property
    def is_bound(self) -> bool:
        return self.conn.session.state in BOUND_STATES

    @property
    def receives(self) -> bool:
        return self.conn.session.state in _RECEIVING

    async def run(self) -> None:
        log.debug("connection from %s", self.peer)
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self.conn.run()
            finally:
                if self._pump is not None:
                    self._pump.cancel()
                for handle in self._delayed.values():
                    handle.cancel()
        log.info(
            "connection from %s (%s) closed: %s", self.peer, self.system_id, self.conn.close_reason
        )

    # -- requests ----------------------------------------------------------------------

    def _on_request(self, pdu: Pdu) -> None:
        if isinstance(pdu, _Bind):
            self._on_bind(pdu)
        elif isinstance(pdu, SubmitSm):
            self._on_submit(pdu)
        elif isinstance(pdu, QuerySm):
            # query_sm is not simulated yet: the message is "not found".
            self._respond(pdu, QuerySmResp(command_status=CommandStatus.ESME_RQUERYFAIL))
        else:
            self._respond(pdu, GenericNack(command_status=CommandStatus.ESME_RINVCMDID))

    def _on_submit(self, pdu: SubmitSm) -> None:
        if not self._faults.withholding:
            self._respond(pdu, self._centre.submit(self.system_id, pdu, self.flags))
            return
        self._centre.stats.submits_withheld += 1
        if self._faults.withheld_accepted:
            self._centre.submit(self.system_id, pdu, self.flags)

    def _on_bind(self, pdu: _Bind) -> None:
        status = self._faults.bind_refusal
        if status is None:
            status = self._centre.authenticate(pdu.system_id, pdu.password)
        respond_with = _BIND_RESPONSES[type(pdu)]
        if status != CommandStatus.ESME_ROK:
            self._centre.stats.binds_failed += 1
            log.warning("bind of %s from %s refused: 0x%08X", pdu.system_id, self.peer, status)
            self._respond(pdu, respond_with(command_status=status), close="bind refused")
            return
        self._centre.stats.binds_ok += 1
        self.system_id = pdu.system_id
        self.flags = BindFlags.parse(pdu.system_type)
        self._respond(pdu, respond_with(system_id=self._centre.config.system_id))

    def _respond(self, request: Pdu, response: Pdu, *, close: str | None = None) -> None:
        delay = self._faults.response_delay_seconds
        if delay <= 0:
            self._answer(request, response, close)
            return
        key = next(self._delay_keys)
        loop = asyncio.get_running_loop()
        self._delayed[key] = loop.call_later(
            delay, self._answer_late, key, request, response, close
        )

    def _answer_late(self, key: int, request: Pdu, response: Pdu, close: str | None) -> None:
        del self._delayed[key]
        self._answer(request, response, close)

    def _answer(self, request: Pdu, response: Pdu, close: str | None) -> None:
        self.conn.respond(request, response)
        if close is not None:
            self.conn.abort(close)
        elif isinstance(request, _Bind) and self.is_bound:
            self._bound()

    def _bound(self) -> None:
        log.info("%s bound from %s as %s", self.system_id, self.peer, self.conn.session.state.value)
        self._on_bound(self)
        if self.receives and self._tasks is not None:
            self._pump = self._tasks.create_task(self._deliver_owed())

    # -- delivery reports and incoming SMS ---------------------------------------------

    async def _deliver_owed(self) -> None:
        queue = self._centre.outbox.ready(self.system_id)
        slots = asyncio.Semaphore(self._centre.config.window)
        async with asyncio.TaskGroup() as in_flight:
            while True:
                await slots.acquire()
                item = await queue.get()
                if not self.receives:  # unbinding: leave the item to the next receiver
                    self._centre.outbox.requeue(item)
                    return
                in_flight.create_task(self._deliver(item, slots))

    async def _deliver(self, item: Pending, slots: asyncio.Semaphore) -> None:
        assert item.pdu is not None
        result = DeliveryResult.LOST
        try:
            self._centre.attempt(item)
            response = await self.conn.request(item.pdu)
            result = DeliveryResult.answered(response.command_status)
        except ResponseTimeoutError:
            result = DeliveryResult.TIMED_OUT
        except (ConnectionClosedError, SessionStateError):
            result = DeliveryResult.LOST
        finally:
            slots.release()
            self._centre.finished(item, result)
