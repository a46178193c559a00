"""An SMSC simulator speaking SMPP 3.4 the way the provider does (SMPP seed).

It listens on TCP, checks binds against its accounts, answers submit_sm with decimal message
ids, and sends delivery reports after a delay, retrying until each is acknowledged with
ESME_ROK - on any connection of the account bound as a receiver, including one bound after
the original connection dropped. The protocol itself is the project's own sans-I/O
:class:`~gateway.smpp.session.Session` driven by
:class:`~gateway.transport.smpp_connection.SmppConnection`.

Usage::

    async with SmppSimulator(SimulatorConfig(dlr_delay_seconds=0.1)) as sim:
        ...  # connect an ESME to 127.0.0.1:sim.port
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from gateway.errors import GatewayError, TransportError
from gateway.smpp.constants import CommandStatus
from gateway.smpp.errors import ConnectionClosedError, ResponseTimeoutError, SessionStateError
from gateway.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
)
from gateway.smpp.session import Role, Session, SessionConfig, State
from gateway.transport.smpp_connection import SmppConnection

from .config import SimulatorConfig
from .outbox import PendingDlr
from .smsc import DeliveryResult, MessageCentre
from .stats import SimulatorStats, SubmitRecord

log = logging.getLogger(__name__)

_BIND_RESPONSES: dict[type[Pdu], Callable[..., Pdu]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
}
_RECEIVING = frozenset({State.BOUND_RX, State.BOUND_TRX})


class NoReceiverError(GatewayError):
    """No connection of the system_id is bound as a receiver or transceiver."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SmppSimulator:
    """The SMPP side of ``smsc-gateway simulate``; see the module docstring.

    ``wall_clock`` gives the dates written in delivery receipts (UTC by default).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.config = config or SimulatorConfig()
        self._wall_clock = wall_clock
        self._centre: MessageCentre | None = None
        self._server: asyncio.Server | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()
        self._links: set[_Link] = set()
        self._port = 0

    # -- what tests and benchmarks read ------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port actually listened on (useful with ``port=0``)."""
        return self._port

    @property
    def stats(self) -> SimulatorStats:
        return self._started_centre().stats

    @property
    def submits(self) -> Sequence[SubmitRecord]:
        """Accepted submits, oldest first (at most ``max_recorded_submits``)."""
        return self._started_centre().submits

    def clear_submits(self) -> None:
        self._started_centre().submits.clear()

    def bound(self, system_id: str | None = None) -> int:
        """How many connections (of ``system_id``, or of anyone) are bound."""
        return sum(
            1
            for link in self._links
            if link.system_id and system_id in (None, link.system_id) and link.is_bound
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; returns once connections are accepted. Raises TransportError on failure."""
        if self._runner is not None:
            raise RuntimeError("the simulator was already started")
        loop = asyncio.get_running_loop()
        self._centre = MessageCentre(self.config, clock=loop.time, wall_clock=self._wall_clock)
        host, port = self.config.host, self.config.port
        try:
            self._server = await asyncio.start_server(self._accept, host, port, start_serving=False)
        except OSError as exc:
            raise TransportError(f"simulator cannot listen on {host}:{port}: {exc}") from exc
        self._port = self._server.sockets[0].getsockname()[1]
        tasks_ready = asyncio.Event()
        self._runner = asyncio.create_task(self._run(tasks_ready), name="smpp-simulator")
        await tasks_ready.wait()
        await self._server.start_serving()
        log.info("SMPP simulator listening on %s:%s", host, self._port)

    async def stop(self) -> None:
        """Stop listening, unbind every connection, and end every task the simulator owns."""
        if self._runner is None:
            return
        self._stopping.set()
        await self._runner

    async def serve_forever(self) -> None:
        """Run until :meth:`stop` is called (or this call is cancelled, which also stops)."""
        if self._runner is None:
            await self.start()
        assert self._runner is not None
        try:
            await asyncio.shield(self._runner)
        finally:
            await self.stop()

    async def __aenter__(self) -> SmppSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- hooks for tests -------------------------------------------------------------------

    async def deliver(self, system_id: str, pdu: DeliverSm) -> Pdu:
        """Send ``pdu`` (an incoming SMS, say) to a receiver of ``system_id``; returns the
        ESME's response. Raises :class:`NoReceiverError` when none is bound."""
        for link in self._links:
            if link.system_id == system_id and link.receives:
                response = await link.conn.request(pdu)
                self._started_centre().stats.delivers_sent += 1
                return response
        raise NoReceiverError(f"no receiver bound for {system_id}")

    # -- internals ---------------------------------------------------------------------

    def _started_centre(self) -> MessageCentre:
        if self._centre is None:
            raise RuntimeError("the simulator is not started")
        return self._centre

    async def _run(self, tasks_ready: asyncio.Event) -> None:
        centre = self._started_centre()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            scheduler = tasks.create_task(centre.run(), name="smpp-simulator-dlrs")
            tasks_ready.set()
            await self._stopping.wait()
            await self._close_connections()
            scheduler.cancel()
        self._tasks = None
        log.info("SMPP simulator stopped")

    async def _close_connections(self) -> None:
        assert self._server is not None
        self._server.close()
        timeout = self.config.stop_timeout_seconds
        async with asyncio.TaskGroup() as unbinds:
            for link in list(self._links):
                unbinds.create_task(link.conn.unbind(timeout))
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tasks is None or self._stopping.is_set():
            writer.close()
            return
        centre = self._started_centre()
        link = _Link(centre, reader, writer)
        self._links.add(link)
        centre.stats.connections += 1
        self._tasks.create_task(self._serve(link), name=f"smpp-simulator {link.peer}")

    async def _serve(self, link: _Link) -> None:
        try:
            await link.run()
        except Exception:
            # Task root: one broken connection must not take the simulator down.
            self._started_centre().stats.connection_errors += 1
            log.exception("simulator connection %s failed", link.peer)
            link.conn.abort("simulator error")
        finally:
            self._links.discard(link)


def _session_config(config: SimulatorConfig) -> SessionConfig:
    # The provider never sends enquire_link itself; it cuts a client idle for 2 minutes.
    return SessionConfig(
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


class _Link:
    """One ESME connection: answers its requests and, once bound as a receiver, delivers
    the reports owed to its account, up to ``window`` at a time."""

    def __init__(
        self, centre: MessageCentre, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.peer = _peer_name(writer)
        self.system_id = ""
        self._centre = centre
        config = centre.config
        session = Session(Role.SMSC, _session_config(config), asyncio.get_running_loop().time())
        self.conn = SmppConnection(
            session, reader, writer, self._on_request, name=f"simulator {self.peer}"
        )
        self._tasks: asyncio.TaskGroup | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def is_bound(self) -> bool:
        return self.conn.session.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)

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
        log.info(
            "connection from %s (%s) closed: %s", self.peer, self.system_id, self.conn.close_reason
        )

    def _on_request(self, pdu: Pdu) -> None:
        if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            self._on_bind(pdu)
        elif isinstance(pdu, SubmitSm):
            self.conn.respond(pdu, self._centre.submit(self.system_id, pdu))
        elif isinstance(pdu, QuerySm):
            # query_sm is not simulated yet: the message is "not found".
            self.conn.respond(pdu, QuerySmResp(command_status=CommandStatus.ESME_RQUERYFAIL))
        else:
            self.conn.respond(pdu, GenericNack(command_status=CommandStatus.ESME_RINVCMDID))

    def _on_bind(self, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> None:
        status = self._centre.authenticate(pdu.system_id, pdu.password)
        respond_with = _BIND_RESPONSES[type(pdu)]
        if status is not CommandStatus.ESME_ROK:
            self._centre.stats.binds_failed += 1
            log.warning("bind of %s from %s refused: %s", pdu.system_id, self.peer, status.name)
            self.conn.respond(pdu, respond_with(command_status=status))
            self.conn.abort("bind refused")
            return
        self._centre.stats.binds_ok += 1
        self.system_id = pdu.system_id
        self.conn.respond(pdu, respond_with(system_id=self._centre.config.system_id))
        log.info("%s bound from %s as %s", self.system_id, self.peer, self.conn.session.state.value)
        if self.receives and self._tasks is not None:
            self._pump = self._tasks.create_task(self._deliver_reports())

    async def _deliver_reports(self) -> None:
        queue = self._centre.outbox.ready(self.system_id)
        slots = asyncio.Semaphore(self._centre.config.window)
        async with asyncio.TaskGroup() as in_flight:
            while True:
                await slots.acquire()
                dlr = await queue.get()
                if not self.receives:  # unbinding: leave the report to the next receiver
                    self._centre.outbox.requeue(dlr)
                    return
                in_flight.create_task(self._deliver_report(dlr, slots))

    async def _deliver_report(self, dlr: PendingDlr, slots: asyncio.Semaphore) -> None:
        assert dlr.pdu is not None
        result = DeliveryResult.LOST
        try:
            dlr.attempts += 1
            self._centre.stats.dlrs_sent += 1
            response = await self.conn.request(dlr.pdu)
            ok = response.command_status == CommandStatus.ESME_ROK
            result = DeliveryResult.ACKED if ok else DeliveryResult.REFUSED
        except ResponseTimeoutError:
            result = DeliveryResult.TIMED_OUT
        except (ConnectionClosedError, SessionStateError):
            result = DeliveryResult.LOST
        finally:
            slots.release()
            self._centre.finished(dlr, result)
