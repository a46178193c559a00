"""The simulator's pieces as plain objects: config, long-message parts, the SMSC logic."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ConfigError
from gateway.simulator import DlrOutcome, SimulatorSettings
from gateway.simulator.concat import PartAssembler, PartInfo, count_parts, part_info
from gateway.simulator.dlr import AcceptedMessage, format_cost
from gateway.simulator.smsc import DeliveryResult, MessageCentre
from gateway.smpp.constants import CommandStatus, EsmClass, TlvTag
from gateway.smpp.pdu import SubmitSm, Tlv, tlv_u8, tlv_u16

NOW = datetime(2024, 3, 5, 14, 7, tzinfo=UTC)


def test_config_repr_hides_passwords() -> None:
    config = SimulatorSettings(accounts={"gateway": "hunter2"})
    assert "hunter2" not in repr(config)
    assert config.accounts == {"gateway": "hunter2"}


def test_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        SimulatorSettings(
            port=70000,
            window=0,
            accounts={"x" * 16: "muchtoolong"},
            dlr_outcomes=(DlrOutcome("BOGUS", 0, 1.0),),
            dlr_cost=Decimal(12),
            dlr_mccmnc="250011",
            inactivity_timeout_seconds=0,
        )
    message = str(error.value)
    for fragment in (
        "port 70000",
        "window",
        "system_id must be",
        "password must be",
        "unknown stat 'BOGUS'",
        "dlr_cost",
        "dlr_mccmnc",
        "inactivity_timeout_seconds",
    ):
        assert fragment in message
    assert "muchtoolong" not in message


def test_config_is_frozen_and_revalidated_on_replace() -> None:
    config = SimulatorSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(ConfigError):
        dataclasses.replace(config, window=0)


def test_cost_is_written_with_four_decimals() -> None:
    assert format_cost(Decimal("1.95")) == "1.9500"
    assert format_cost(Decimal(0)) == "0.0000"


def _part(udh: bytes) -> SubmitSm:
    return SubmitSm(destination_addr="7999", esm_class=EsmClass.UDHI, short_message=udh + b"x")


def test_part_info_from_udh_and_sar() -> None:
    assert part_info(_part(bytes([5, 0x00, 3, 7, 3, 2]))) == PartInfo(7, 3, 2)
    assert part_info(_part(bytes([6, 0x08, 4, 1, 2, 2, 1]))) == PartInfo(0x102, 2, 1)
    # Another element first (0x05 application port), then the concatenation one.
    assert part_info(_part(bytes([11, 0x05, 4, 0, 0, 0, 0, 0x00, 3, 9, 2, 2]))) == PartInfo(9, 2, 2)
    sar = SubmitSm(
        destination_addr="7999",
        tlvs=(
            tlv_u16(TlvTag.SAR_MSG_REF_NUM, 300),
            tlv_u8(TlvTag.SAR_TOTAL_SEGMENTS, 2),
            tlv_u8(TlvTag.SAR_SEGMENT_SEQNUM, 2),
        ),
    )
    assert part_info(sar) == PartInfo(300, 2, 2)


@pytest.mark.parametrize(
    "udh",
    [
        bytes([5, 0x00, 3, 7, 3, 0]),  # sequence 0
        bytes([5, 0x00, 3, 7, 3, 4]),  # sequence past the total
        bytes([5, 0x00, 3, 7, 1, 1]),  # a "long" message of one part
        bytes([5, 0x00, 3]),  # truncated
        b"",
    ],
)
def test_part_info_ignores_what_is_not_a_valid_part(udh: bytes) -> None:
    assert part_info(_part(udh)) is None
    assert part_info(SubmitSm(short_message=bytes([5, 0x00, 3, 7, 3, 2]))) is None  # no UDHI


@pytest.mark.parametrize(
    ("data_coding", "size", "parts"),
    [(0, 160, 1), (0, 161, 2), (0, 306, 2), (0, 307, 3), (8, 140, 1), (8, 141, 2), (4, 300, 3)],
)
def test_parts_of_a_message_payload(data_coding: int, size: int, parts: int) -> None:
    pdu = SubmitSm(data_coding=data_coding, tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"a" * size),))
    assert count_parts(pdu) == parts
    assert count_parts(SubmitSm(short_message=b"a" * 140)) == 1


def test_assembler_forgets_the_oldest_unfinished_message() -> None:
    assembler = PartAssembler(limit=2)
    made: list[int] = []

    def accept(total: int) -> AcceptedMessage:
        made.append(total)
        return AcceptedMessage(str(len(made)), 0, 0, "S", 1, 1, "7999", NOW, total)

    for reference in (1, 2, 3):
        assembler.add("gw", SubmitSm(), PartInfo(reference, 2, 1), accept)
    assert len(assembler) == 2
    message, complete = assembler.add("gw", SubmitSm(), PartInfo(1, 2, 2), accept)
    assert (message.message_id, complete) == ("4", False)  # reference 1 was forgotten


def _centre(**overrides: Any) -> tuple[MessageCentre, list[float]]:
    clock = [100.0]
    config = dataclasses.replace(SimulatorSettings(dlr_delay_seconds=1.0), **overrides)
    centre = MessageCentre(config, clock=lambda: clock[0], wall_clock=lambda: NOW)
    return centre, clock


def test_centre_checks_credentials() -> None:
    centre, _ = _centre()
    assert centre.authenticate("gateway", "secret") is CommandStatus.ESME_ROK
    assert centre.authenticate("gateway", "secreT") is CommandStatus.ESME_RINVPASWD
    assert centre.authenticate("Gateway", "secret") is CommandStatus.ESME_RINVSYSID


def test_centre_keeps_a_report_until_acknowledged() -> None:
    centre, clock = _centre(dlr_retry_seconds=5.0)
    answer = centre.submit("gateway", SubmitSm(destination_addr="7999", registered_delivery=1))
    assert answer.message_id == "100000001"
    assert (centre.stats.dlrs_pending, centre.outbox.waiting()) == (1, 1)
    ready = centre.outbox.ready("gateway")
    centre.outbox.release_due(clock[0] + 0.9)
    assert ready.empty()
    delays = {DeliveryResult.REFUSED: 5.0, DeliveryResult.TIMED_OUT: 5.0, DeliveryResult.LOST: 0.0}
    clock[0] += 1.0
    for result, delay in delays.items():
        centre.outbox.release_due(clock[0])
        dlr = ready.get_nowait()
        assert dlr.pdu is not None
        assert dlr.pdu.short_message.startswith(b"id:100000001 sub:001 dlvrd:001 ")
        centre.finished(dlr, result)
        clock[0] += delay
    centre.outbox.release_due(clock[0])
    centre.finished(ready.get_nowait(), DeliveryResult.ACKED)
    assert (centre.stats.dlrs_pending, centre.outbox.waiting(), ready.qsize()) == (0, 0, 0)
    assert (centre.stats.dlrs_refused, centre.stats.dlrs_timed_out) == (1, 1)


def test_centre_refuses_a_submit_without_destination() -> None:
    centre, _ = _centre()
    answer = centre.submit("gateway", SubmitSm(registered_delivery=1))
    assert answer.command_status == CommandStatus.ESME_RINVDSTADR
    assert centre.stats.dlrs_scheduled == 0


@given(
    esm_class=st.sampled_from([0, EsmClass.UDHI]),
    short_message=st.binary(max_size=40),
    sar=st.lists(st.binary(max_size=3), min_size=3, max_size=3),
)
def test_part_info_never_raises(esm_class: int, short_message: bytes, sar: list[bytes]) -> None:
    tags = (TlvTag.SAR_MSG_REF_NUM, TlvTag.SAR_TOTAL_SEGMENTS, TlvTag.SAR_SEGMENT_SEQNUM)
    pdu = SubmitSm(
        esm_class=esm_class,
        short_message=short_message,
        tlvs=tuple(Tlv(tag, value) for tag, value in zip(tags, sar, strict=True)),
    )
    info = part_info(pdu)
    assert info is None or 1 <= info.sequence <= info.total
