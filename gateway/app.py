"""The composition root: builds every object a role needs and runs it until told to stop.

Shutdown drains in order: stop consuming, finish the in-flight window, unbind, answer the
DELIVER_SMs still being stored, flush the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.config import Settings
from gateway.http.probes import ProbeServer
from gateway.inbound.publisher import DeliverSmPublisher
from gateway.kafka.client import KafkaPublisher, KafkaRecordSource
from gateway.kafka.records import Partition
from gateway.metrics import Metrics
from gateway.sender.service import Sender
from gateway.smpp.pdu import DeliverSm, DeliverSmResp
from gateway.transport.smpp_client import SmppClient
from gateway.transport.smpp_connection import SmppConnection

log = logging.getLogger(__name__)


async def run_sender(settings: Settings, metrics: Metrics, stop: asyncio.Event) -> None:
    """Run the sender role (with its transceiver bind's DLRs) until ``stop`` is set."""
    publisher = KafkaPublisher(settings.kafka, metrics)
    await publisher.start()
    inbound = DeliverSmPublisher(publisher, settings.topics, metrics, role="sender")
    bind_name = "smpp-0"

    def on_deliver(connection: SmppConnection, pdu: DeliverSm) -> None:
        def respond(status: int) -> None:
            connection.respond(pdu, DeliverSmResp(command_status=status))

        inbound.submit(pdu, respond, bind=bind_name)

    client = SmppClient(settings.smpp, metrics, on_deliver, name=bind_name)

    async def on_revoked(partitions: set[Partition]) -> None:
        await sender.on_revoked(partitions)

    source = KafkaRecordSource(
        settings.kafka,
        metrics,
        topics=[settings.topics.send_priority, settings.topics.send],
        group_id=settings.sender.group_id,
        on_revoked=on_revoked,
    )
    sender = Sender(
        source=source,
        publisher=publisher,
        submitter=client,
        settings=settings.sender,
        smpp=settings.smpp,
        topics=settings.topics,
        metrics=metrics,
    )
    probes = ProbeServer(
        settings.http.host,
        settings.http.port,
        metrics,
        lambda: (client.bound, "bound" if client.bound else "not bound"),
    )
    await probes.start()
    client_task = asyncio.create_task(client.run(), name="smpp-client")
    try:
        await source.start()
        try:
            await sender.run(stop)
        finally:
            await client.stop()
            await inbound.drain()
            await source.stop()
    finally:
        client_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client_task
        await publisher.stop()
        await probes.stop()
        log.info("sender stopped")
