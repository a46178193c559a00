"""The message centre's accounting of queued DELIVER_SMs, on a fake clock without sockets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.settings.simulator import SimulatorSettings
from gateway.simulator.incoming import IncomingSpec
from gateway.simulator.smsc import DeliveryResult, MessageCentre
from gateway.smpp.constants import CommandStatus
from gateway.smpp.pdu import SubmitSm

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
Status = CommandStatus


def centre_at(clock: list[float], **config: Any) -> MessageCentre:
    base = SimulatorSettings(incoming_retry_seconds=5.0, dlr_retry_seconds=2.0)
    settings = dataclasses.replace(base, **config)
    return MessageCentre(settings, clock=lambda: clock[0], wall_clock=lambda: NOW)


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (Status.ESME_ROK, DeliveryResult.ACKED),
        (Status.ESME_RX_T_APPN, DeliveryResult.REFUSED),
        (Status.ESME_RSYSERR, DeliveryResult.REFUSED),
        (Status.ESME_RTHROTTLED, DeliveryResult.REFUSED),
        (Status.ESME_RX_P_APPN, DeliveryResult.REJECTED),
        (Status.ESME_RX_R_APPN, DeliveryResult.REJECTED),
    ],
)
def test_answers_map_to_results(status: int, result: DeliveryResult) -> None:
    assert DeliveryResult.answered(status) is result


def test_an_incoming_sms_is_kept_until_acknowledged() -> None:
    clock = [100.0]
    centre = centre_at(clock)
    (pdu,) = centre.incoming("gateway", IncomingSpec("79160000000", "7900", "hi"))
    ready = centre.outbox.ready("gateway")
    assert not centre.incoming_idle.is_set()
    item = ready.get_nowait()
    assert item.pdu is pdu
    centre.attempt(item)
    centre.finished(item, DeliveryResult.REFUSED)  # back after incoming_retry_seconds
    centre.outbox.release_due(clock[0] + 4.9)
    assert ready.empty()
    centre.outbox.release_due(clock[0] + 5.0)
    item = ready.get_nowait()
    centre.attempt(item)
    centre.finished(item, DeliveryResult.LOST)  # back at once
    item = ready.get_nowait()
    centre.attempt(item)
    centre.finished(item, DeliveryResult.TIMED_OUT)
    clock[0] += 5.0
    centre.outbox.release_due(clock[0])
    item = ready.get_nowait()
    centre.attempt(item)
    centre.finished(item, DeliveryResult.ACKED)
    stats = centre.stats
    assert (item.attempts, stats.incoming_sent, stats.incoming_acked) == (4, 4, 1)
    assert (stats.incoming_refused, stats.incoming_timed_out, stats.incoming_pending) == (1, 1, 0)
    assert centre.incoming_idle.is_set()
    assert (ready.qsize(), centre.outbox.waiting()) == (0, 0)


def test_a_permanent_refusal_drops_reports_and_incoming_alike() -> None:
    clock = [100.0]
    centre = centre_at(clock, dlr_delay_seconds=0.0)
    centre.submit("gateway", SubmitSm(destination_addr="7999", registered_delivery=1))
    centre.incoming("gateway", IncomingSpec("79160000000", "7900", "hi"))
    centre.outbox.release_due(clock[0])
    ready = centre.outbox.ready("gateway")
    for _ in range(2):
        centre.finished(ready.get_nowait(), DeliveryResult.REJECTED)
    stats = centre.stats
    assert (stats.incoming_rejected, stats.incoming_pending) == (1, 0)
    assert (stats.dlrs_rejected, stats.dlrs_pending) == (1, 0)
    assert centre.incoming_idle.is_set()
    clock[0] += 60
    centre.outbox.release_due(clock[0])
    assert ready.empty()


def test_incoming_for_an_unknown_account_is_refused() -> None:
    with pytest.raises(ValueError, match="no account"):
        centre_at([0.0]).incoming("stranger", IncomingSpec("1", "2", "x"))
