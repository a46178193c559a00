"""SMPP binds whose DELIVER_SMs go to a publisher: what the sender and the receiver share."""

from __future__ import annotations

import functools
from collections.abc import Callable

from gateway.inbound.publisher import DeliverSmPublisher
from gateway.metrics import Metrics
from gateway.settings import SmppSettings
from gateway.smpp.pdu import DeliverSm, DeliverSmResp
from gateway.smpp_io.smpp_client import BindMode, SmppClient
from gateway.smpp_io.smpp_connection import SmppConnection


def delivering_binds(
    smpp: SmppSettings,
    metrics: Metrics,
    inbound: DeliverSmPublisher,
    *,
    name: str,
    count: int,
    mode: BindMode = BindMode.TRANSCEIVER,
) -> list[SmppClient]:
    """``count`` binds named ``<name>-<i>``; each hands its DELIVER_SMs to ``inbound``, which
    answers them once their events are stored."""
    return [
        SmppClient(smpp, metrics, deliver_to(inbound, f"{name}-{i}"), name=f"{name}-{i}", mode=mode)
        for i in range(count)
    ]


def deliver_to(
    inbound: DeliverSmPublisher, bind: str
) -> Callable[[SmppConnection, DeliverSm], None]:
    """The DELIVER_SM handler of one bind: ``inbound`` stores the event, then answers."""

    def on_deliver(connection: SmppConnection, pdu: DeliverSm) -> None:
        def respond(status: int) -> None:
            connection.respond(pdu, _response(status))

        inbound.submit(pdu, respond, bind=bind)

    return on_deliver


@functools.cache
def _response(status: int) -> DeliverSmResp:
    # A handful of statuses ever; the session stamps each answer with its request's sequence.
    return DeliverSmResp(command_status=status)
