"""Composed long messages submitted to the project's SMSC simulator over a real TCP bind.

The provider answers every part of a long message with the same message id and sends one
delivery report for the glued message (SMPP seed, "Checking the status"); the simulator
does the same when it recognises the parts, so each split mode must produce parts it
recognises as one message of the expected number of SMS.
"""

from __future__ import annotations

import pytest

from gateway.compose import CompositionSettings
from gateway.simulator import SmppSimulator
from gateway.smpp.constants import TlvTag
from gateway.smpp.pdu import SubmitSmResp
from tests.compose.composecheck import compose
from tests.simulator.conftest import fast_config
from tests.simulator.esme import Esme

TEXT = "Ваш заказ 42 собран и передан в доставку. Курьер позвонит за час до приезда. " * 2


@pytest.mark.parametrize(
    "settings",
    [
        CompositionSettings(),
        CompositionSettings(reference_bits=16),
        CompositionSettings(split="sar"),
        CompositionSettings(split="payload"),
    ],
    ids=["udh8", "udh16", "sar", "payload"],
)
async def test_parts_make_one_message_with_one_report(settings: CompositionSettings) -> None:
    composed = compose(settings, reference=0x2A2A, text=TEXT)
    assert composed.segments == 3
    async with SmppSimulator(fast_config()) as sim:
        esme = await Esme.connect(sim.port)
        try:
            await esme.bind()
            answers = [await esme.conn.request(pdu) for pdu in composed.parts]
            assert all(isinstance(a, SubmitSmResp) and a.command_status == 0 for a in answers)
            assert len({a.message_id for a in answers if isinstance(a, SubmitSmResp)}) == 1
            report = await esme.next_deliver()
        finally:
            await esme.close()
    assert b" sub:003 " in report.short_message
    parts = report.tlv(TlvTag.SMSC_PARTS)
    assert parts is not None
    assert parts.as_int() == 3
