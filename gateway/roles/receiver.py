"""``smsc-gateway receiver``: SMPP binds that only receive, for deployments sending over HTTP.

Each bind (bind_receiver, or transceiver by configuration) hands its DELIVER_SMs to a
:class:`~gateway.inbound.publisher.DeliverSmPublisher`, which answers each one only after
Kafka acknowledged its event; parts of concatenated SMS go to the parts topic, which the
role's :class:`~gateway.inbound.reassembly_service.Reassembler` turns into whole messages.
``/readyz`` is ready while at least one bind is up and Kafka takes the role's writes (the
latest publish succeeded, or, when nothing was published for a while, a broker answered).

Shutdown drains in order: take no more DELIVER_SMs (new ones are answered ESME_RX_T_APPN, so
the provider delivers them again), answer the ones being stored (until the drain deadline: the
rest stay unanswered, and the provider delivers them again), unbind, stop the reassembler (it
commits what is safe), flush the producer; each closing step gives up at the close deadline
(:mod:`gateway.shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.inbound.publisher import DeliverSmPublisher
from gateway.inbound.reassembly_service import Reassembler
from gateway.kafka.batching import BatchingPublisher
from gateway.kafka.health import keep_probed
from gateway.metrics import Metrics
from gateway.roles.binds import delivering_binds
from gateway.roles.probes import ProbeServer
from gateway.settings import Settings, require_role
from gateway.shutdown import Shutdown, run_until
from gateway.smpp_io.smpp_client import BindMode

log = logging.getLogger(__name__)


class Receiver:
    """The receiver's binds and their publisher; nothing runs until :meth:`run`."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        publisher: BatchingPublisher,
        shutdown: Shutdown | None = None,
    ) -> None:
        self._settings = settings.receiver
        self._publisher = publisher
        self.shutdown = shutdown or Shutdown(settings.receiver.drain_timeout_seconds)
        name = settings.receiver.name
        self.inbound = DeliverSmPublisher(publisher, settings.topics, metrics, role=name)
        self.clients = delivering_binds(
            settings.smpp,
            metrics,
            self.inbound,
            name=name,
            count=settings.receiver.binds,
            mode=BindMode(settings.receiver.bind_mode),
        )
        self.reassembler = Reassembler(settings, metrics, publisher, shutdown=self.shutdown)

    @property
    def bound(self) -> int:
        return sum(1 for client in self.clients if client.bound)

    def ready(self) -> tuple[bool, str]:
        """(ready, why) for /readyz: a bind up and Kafka answering."""
        bound = f"{self.bound} of {len(self.clients)} bound"
        kafka_ok, kafka = self._publisher.health.ready(time.monotonic())
        return self.bound > 0 and kafka_ok, f"{bound}; {kafka}"

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the binds up until ``stop`` is set, then drain and unbind."""
        reassembly_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            binds = [tasks.create_task(c.run(), name=f"{c.name}-bind") for c in self.clients]
            prober = tasks.create_task(keep_probed(self._publisher), name="receiver-prober")
            reassembling = tasks.create_task(
                self.reassembler.run(reassembly_stop), name="reassembler"
            )
            await stop.wait()
            self.shutdown.begin()
            await self._drain()
            unbinding = asyncio.gather(*(client.stop() for client in self.clients))
            await self.shutdown.step("unbinding", unbinding)
            for task in [*binds, prober]:
                task.cancel()
            reassembly_stop.set()
            await self.shutdown.step("stopping the reassembler", reassembling)
        log.info("receiver stopped")

    async def probe(self) -> None:
        """Ask the brokers whether they answer; the outcome feeds :meth:`ready`."""
        await self._publisher.probe()

    async def _drain(self) -> None:
        self.inbound.close()
        await run_until(self.inbound.drain(), self.shutdown.drain_deadline, "storing deliver_sm")
        if self.inbound.unanswered:
            log.warning(
                "%d deliver_sm still unanswered at the drain deadline; "
                "the provider will deliver them again",
                self.inbound.unanswered,
            )


async def run_receiver(settings: Settings, metrics: Metrics, stop: asyncio.Event) -> None:
    """Run the receiver role (DELIVER_SM over SMPP to Kafka) until ``stop`` is set."""
    require_role(settings, "receiver")
    publisher = BatchingPublisher(settings.kafka, metrics)
    await publisher.start()
    receiver = Receiver(settings, metrics, publisher)
    probes = ProbeServer(settings.http.host, settings.receiver.probe_port, metrics, receiver.ready)
    try:
        await receiver.probe()
        await probes.start()
        log.info("receiver probes on port %d", probes.port)
        await receiver.run(stop)
    finally:
        await receiver.shutdown.step("flushing and closing the producer", publisher.stop())
        await probes.stop()
