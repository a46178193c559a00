"""Senders and destinations with their TON/NPI, and the SMPP time fields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.compose import (
    BindProfile,
    CompositionError,
    CompositionSettings,
    compose_message,
    message_reference,
)
from tests.compose.composecheck import NOW, PROFILE, WIDE, compose, refused, request


@pytest.mark.parametrize(
    ("sender", "addr", "ton", "npi"),
    [
        ("SMSC.RU", "SMSC.RU", 5, 1),  # the sample settings' 5/1
        ("Shop 24", "Shop 24", 5, 1),
        ("12ab", "12ab", 5, 1),
        ("+79991234567", "79991234567", 1, 1),  # "+" read and dropped
        ("+1234", "1234", 1, 1),
        ("79991234567", "79991234567", 1, 1),
        ("123456789", "123456789", 1, 1),
        ("12345678", "12345678", 3, 0),  # short code
        ("1234", "1234", 3, 0),
        ("1" * 20, "1" * 20, 1, 1),
    ],
)
def test_sender_numbering(sender: str, addr: str, ton: int, npi: int) -> None:
    (pdu,) = compose(sender_id=sender).parts
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == (addr, ton, npi)


def test_numbering_comes_from_settings_and_bind() -> None:
    profile = BindProfile(alphanumeric_ton=5, alphanumeric_npi=0, default_source="Brand")
    settings = CompositionSettings(short_code_ton=0, short_code_npi=1)
    (alpha,) = compose(settings, profile).parts
    assert (alpha.source_addr, alpha.source_addr_ton, alpha.source_addr_npi) == ("Brand", 5, 0)
    (short,) = compose(settings, profile, sender_id="7522").parts
    assert (short.source_addr_ton, short.source_addr_npi) == (0, 1)


def test_no_sender_at_all_leaves_it_to_the_provider() -> None:
    (pdu,) = compose(profile=BindProfile()).parts
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("", 5, 1)


@pytest.mark.parametrize(
    "sender", ["12+34", "TooLongName1", "Кириллица", "tab\there", "1" * 21, "+", "+12a"]
)
def test_invalid_sender(sender: str) -> None:
    refused("invalid_sender_id", sender_id=sender)


def test_invalid_default_sender_is_refused_too() -> None:
    refused("invalid_sender_id", profile=BindProfile(default_source="Very long brand"))


def test_destination() -> None:
    profile = BindProfile(destination_ton=0, destination_npi=0)
    (pdu,) = compose(profile=profile).parts
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("79991234567", 0, 0)
    assert compose().parts[0].dest_addr_ton == 1


@pytest.mark.parametrize("phone", ["+79991234567", "1234", "7" * 21, "7999 123", ""])
def test_invalid_destination(phone: str) -> None:
    with pytest.raises(CompositionError) as caught:
        compose_message(request(), phone, WIDE, PROFILE, reference=0, priority=False, now=NOW)
    assert caught.value.code == "invalid_phone"


def test_times() -> None:
    moscow = timezone(timedelta(hours=3))
    (pdu,) = compose(
        validity_seconds=90061, schedule_at=datetime(2030, 1, 2, 6, 4, 5, tzinfo=moscow)
    ).parts
    assert pdu.validity_period == "000001010101000R"
    assert pdu.schedule_delivery_time == "300102030405000+"
    (past,) = compose(schedule_at=NOW - timedelta(seconds=1)).parts
    assert (past.schedule_delivery_time, past.validity_period) == ("", "")
    assert compose(schedule_at=NOW).parts[0].schedule_delivery_time == ""


def test_validity_beyond_the_relative_format() -> None:
    refused("invalid_validity", validity_seconds=100 * 86400)


def test_flags() -> None:
    assert compose(priority=True).parts[0].priority_flag == 1
    assert compose().parts[0].priority_flag == 0
    assert compose(registered_delivery=False).parts[0].registered_delivery == 0
    assert compose().parts[0].registered_delivery == 1


@given(st.text(max_size=40), st.from_regex(r"[0-9]{5,20}", fullmatch=True))
def test_message_reference_is_stable_and_16_bit(request_id: str, phone: str) -> None:
    value = message_reference(request_id, phone)
    assert 0 <= value <= 0xFFFF
    assert value == message_reference(request_id, phone)


def test_message_reference_differs_between_recipients() -> None:
    references = {message_reference("req-1", f"7999123{n:04d}") for n in range(200)}
    assert len(references) > 190


def test_reference_is_masked_to_its_field() -> None:
    eight = compose(reference=0x1FF, text="a" * 200)
    assert eight.reference == 0xFF
    sixteen = compose(CompositionSettings(reference_bits=16), reference=0x12345, text="a" * 200)
    assert sixteen.reference == 0x2345
