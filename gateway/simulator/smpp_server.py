"""An SMSC simulator speaking SMPP 3.4 the way the provider does (SMPP seed).

It listens on TCP, and with ``tls_port`` on TLS as well (the provider's port 3443), checks
binds against its accounts, answers submit_sm with decimal message ids, and sends delivery
reports after a delay (HLR results for ``__HLR__``, one per part with ``system_type``
SINGLE), retrying until each is acknowledged with ESME_ROK or refused with a permanent
error - on any connection of the account bound as a receiver or transceiver, including one
bound after the original connection dropped. Incoming SMS
(:meth:`SmppSimulator.send_incoming`, or made up at ``incoming_rate_per_second``) travel
the same way. It enforces the provider's rate limit, duplicate and flood rules
(:mod:`.rules`) and its connections-per-login rule (:mod:`.logins`): a bind beyond what the
login's ``system_type`` MCONn allows (one without it) unbinds the oldest connection, whose
reports then go to the newer ones. Faults are injected through
:attr:`SmppSimulator.faults` (:mod:`.faults`). The protocol itself is the project's own
sans-I/O :class:`~gateway.smpp.session.Session` driven by
:class:`~gateway.smpp_io.smpp_connection.SmppConnection`.

Usage::

    async with SmppSimulator(SimulatorSettings(dlr_delay_seconds=0.1)) as sim:
        ...  # connect an ESME to 127.0.0.1:sim.port
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from gateway.errors import ConfigError, GatewayError, TransportError
from gateway.settings.simulator import SimulatorSettings
from gateway.smpp.pdu import DeliverSm, Pdu

from .faults import Faults
from .incoming import IncomingSpec
from .link import Link
from .logins import Logins
from .smsc import MessageCentre
from .stats import SimulatorStats, SubmitRecord
from .traffic import IncomingTraffic

log = logging.getLogger(__name__)


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
        config: SimulatorSettings | None = None,
        *,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.config = config or SimulatorSettings()
        self.faults = Faults(
            drop=self._drop_links, set_rate_limit=self._set_rate_limit, rate_limit=self._rate_limit
        )
        self._wall_clock = wall_clock
        self._centre: MessageCentre | None = None
        self._servers: list[asyncio.Server] = []
        self._runner: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()
        self._links: set[Link] = set()
        self._logins: Logins[Link] = Logins()
        self._port = 0
        self._tls_port: int | None = None

    # -- what tests and benchmarks read ------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port actually listened on (useful with ``port=0``)."""
        return self._port

    @property
    def tls_port(self) -> int | None:
        """The TLS port actually listened on, or None without TLS."""
        return self._tls_port

    @property
    def stats(self) -> SimulatorStats:
        return self._started_centre().stats

    @property
    def submits(self) -> Sequence[SubmitRecord]:
        """Accepted submits, oldest first (at most ``max_recorded_submits``)."""
        return self._started_centre().submits

    def clear_submits(self) -> None:
        self._started_centre().submits.clear()

    def now(self) -> float:
        """The monotonic clock of the rules and of ``stats.accepted_between`` (loop time)."""
        return asyncio.get_running_loop().time()

    def bound(self, system_id: str | None = None) -> int:
        """How many connections (of ``system_id``, or of anyone) are bound."""
        return sum(
            1
            for link in self._links
            if link.system_id and system_id in (None, link.system_id) and link.is_bound
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; returns once connections are accepted. Raises TransportError when a port
        cannot be listened on, ConfigError when the TLS certificate cannot be loaded."""
        if self._runner is not None:
            raise RuntimeError("the simulator was already started")
        tls = _tls_context(self.config) if self.config.tls_port is not None else None
        loop = asyncio.get_running_loop()
        self._centre = MessageCentre(self.config, clock=loop.time, wall_clock=self._wall_clock)
        self._port = await self._listen(self.config.port, None)
        if self.config.tls_port is not None:
            self._tls_port = await self._listen(self.config.tls_port, tls)
        tasks_ready = asyncio.Event()
        self._runner = asyncio.create_task(self._run(tasks_ready), name="smpp-simulator")
        await tasks_ready.wait()
        for server in self._servers:
            await server.start_serving()
        log.info("SMPP simulator listening on %s:%s", self.config.host, self._port)

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

    def send_incoming(
        self,
        system_id: str,
        source: str,
        destination: str,
        text: str | bytes,
        *,
        coding: str = "auto",
        concat: str = "udh8",
        shuffle: bool = False,
    ) -> list[DeliverSm]:
        """Queue an incoming SMS from ``source`` to ``destination`` for the receiving binds
        of ``system_id``, built as the provider sends it (:mod:`.incoming`: ``coding`` auto,
        gsm, latin1, ucs2 or binary with bytes; ``concat`` udh8, udh16, sar or payload for a
        long one; ``shuffle`` sends its parts out of order). Returns the PDUs in the order
        they are queued. Each is sent until answered ESME_ROK or refused for good; no bind
        needs to exist yet."""
        spec = IncomingSpec(source, destination, text, coding, concat)
        iso = self._iso(system_id)
        return self._started_centre().incoming(system_id, spec, shuffle=shuffle, iso=iso)

    def queue_deliver(self, system_id: str, pdus: Sequence[DeliverSm]) -> None:
        """Queue arbitrary DELIVER_SMs (reports, odd messages) as :meth:`send_incoming` does."""
        self._started_centre().queue_incoming(system_id, pdus)

    async def incoming_settled(self) -> None:
        """Return once every queued DELIVER_SM was answered ESME_ROK or refused for good
        (``stats.incoming_acked`` and ``stats.incoming_rejected`` say which)."""
        await self._started_centre().incoming_idle.wait()

    # -- internals ---------------------------------------------------------------------

    def _iso(self, system_id: str) -> bool:
        """Whether the account's receiving binds asked for ISO instead of GSM 7-bit."""
        return any(
            link.flags.iso for link in self._links if link.system_id == system_id and link.receives
        )

    async def _make_incoming(self) -> None:
        """Queue made-up incoming SMS at the configured rate to every account with a
        receiving bind, holding back while more than a window of them is unanswered."""
        centre = self._started_centre()
        traffic = IncomingTraffic(self.config, random.Random(self.config.seed))
        interval = 1 / self.config.incoming_rate_per_second
        while True:
            await asyncio.sleep(interval)
            if centre.stats.incoming_pending > self.config.window:
                continue
            receiving = {link.system_id for link in self._links if link.receives}
            for system_id in sorted(receiving):
                spec = traffic.next_message()
                shuffle = self.config.incoming_shuffle
                centre.incoming(system_id, spec, shuffle=shuffle, iso=self._iso(system_id))

    def _started_centre(self) -> MessageCentre:
        if self._centre is None:
            raise RuntimeError("the simulator is not started")
        return self._centre

    async def _listen(self, port: int, tls: ssl.SSLContext | None) -> int:
        host = self.config.host
        try:
            server = await asyncio.start_server(
                self._accept, host, port, ssl=tls, start_serving=False
            )
        except OSError as exc:
            for server in self._servers:
                server.close()
            raise TransportError(f"simulator cannot listen on {host}:{port}: {exc}") from exc
        self._servers.append(server)
        port_used: int = server.sockets[0].getsockname()[1]
        return port_used

    async def _run(self, tasks_ready: asyncio.Event) -> None:
        centre = self._started_centre()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            owned = [tasks.create_task(centre.run(), name="smpp-simulator-outbox")]
            if self.config.incoming_rate_per_second > 0:
                owned.append(tasks.create_task(self._make_incoming(), name="smpp-incoming"))
            tasks_ready.set()
            await self._stopping.wait()
            await self._close_connections()
            for task in owned:
                task.cancel()
        self._tasks = None
        log.info("SMPP simulator stopped")

    async def _close_connections(self) -> None:
        for server in self._servers:
            server.close()
        timeout = self.config.stop_timeout_seconds
        async with asyncio.TaskGroup() as unbinds:
            for link in list(self._links):
                unbinds.create_task(link.conn.unbind(timeout))
        for server in self._servers:
            await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tasks is None or self._stopping.is_set():
            writer.close()
            return
        centre = self._started_centre()
        link = Link(centre, self.faults, (reader, writer), self._on_bound)
        self._links.add(link)
        centre.stats.connections += 1
        self._tasks.create_task(self._serve(link), name=f"smpp-simulator {link.peer}")

    async def _serve(self, link: Link) -> None:
        try:
            await link.run()
        except Exception:
            # Task root: one broken connection must not take the simulator down.
            self._started_centre().stats.connection_errors += 1
            log.exception("simulator connection %s failed", link.peer)
            link.conn.abort("simulator error")
        finally:
            self._links.discard(link)
            self._logins.release(link.system_id, link)

    def _on_bound(self, link: Link) -> None:
        """Count the new bind against its login; unbind the ones it pushes out."""
        for old in self._logins.admit(link.system_id, link, link.flags.mcon):
            self._started_centre().stats.binds_kicked += 1
            log.info("%s from %s kicked by a newer bind", old.system_id, old.peer)
            if self._tasks is not None:
                self._tasks.create_task(self._kick(old), name=f"smpp-simulator kick {old.peer}")

    async def _kick(self, link: Link) -> None:
        # unbind, or close when the peer does not answer within the response timeout.
        await link.conn.unbind(self.config.response_timeout_seconds)

    def _set_rate_limit(self, per_second: float | None, system_id: str | None) -> None:
        self._started_centre().set_rate_limit(per_second, system_id)
        log.info("fault: rate limit of %s set to %s/s", system_id or "everyone", per_second)

    def _rate_limit(self, system_id: str) -> float | None:
        return self._started_centre().rate_limits.rate(system_id)

    def _drop_links(self, system_id: str | None) -> int:
        dropped = [link for link in self._links if system_id in (None, link.system_id)]
        for link in dropped:
            link.conn.abort("dropped by a fault")
        self._started_centre().stats.connections_dropped += len(dropped)
        log.info("fault: dropped %d connection(s) of %s", len(dropped), system_id or "everyone")
        return len(dropped)


def _tls_context(config: SimulatorSettings) -> ssl.SSLContext:
    assert config.tls_cert_file is not None
    assert config.tls_key_file is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"simulator cannot load its TLS certificate: {exc}") from exc
    return context
