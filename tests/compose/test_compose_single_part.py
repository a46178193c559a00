"""One recipient of a send request whose text fits one SMS: the SUBMIT_SM the sender sends.

The part boundaries of long messages are covered in tests/compose; here the fields of the
single PDU, and where a text stops fitting in one part."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.compose import (
    COMMENT_MARKER,
    CompositionError,
    CompositionSettings,
    compose_recipients,
)
from gateway.events.send_request import SendRequest
from gateway.roles.sender import bind_profile
from gateway.settings import SmppSettings
from gateway.smpp.constants import DataCoding, Npi, Ton
from gateway.smpp.pdu import SubmitSm
from gateway.smpp.textcoding import choose_coding, encode_text

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
PHONE = "79991234567"
SMPP = SmppSettings(system_id="login", source_addr="SMSC.RU")


def request(**fields: Any) -> SendRequest:
    fields.setdefault("request_id", "req-1")
    fields.setdefault("recipients", (PHONE,))
    fields.setdefault("text", "Hello")
    return SendRequest(**fields)


def parts(
    priority: bool = False, settings: SmppSettings = SMPP, **fields: Any
) -> tuple[SubmitSm, ...]:
    (message,) = compose_recipients(
        request(**fields), bind_profile(settings), CompositionSettings(), priority=priority, now=NOW
    )
    assert message.phone == PHONE
    assert message.segments == len(message.parts)
    return message.parts


def compose(priority: bool = False, settings: SmppSettings = SMPP, **fields: Any) -> SubmitSm:
    """The one SUBMIT_SM of a text that fits a single part."""
    (pdu,) = parts(priority, settings, **fields)
    return pdu


def test_plain_sms_with_defaults() -> None:
    pdu = compose()
    assert pdu.destination_addr == PHONE
    assert (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)  # the provider's sample settings
    assert pdu.source_addr == "SMSC.RU"
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (5, 1)
    assert pdu.data_coding == DataCoding.GSM7.value == 0
    assert pdu.short_message == b"Hello"
    assert pdu.registered_delivery == 1
    assert pdu.priority_flag == 0
    assert pdu.schedule_delivery_time == ""
    assert pdu.validity_period == ""
    assert pdu.esm_class == 0


def test_gsm_text_uses_gsm_septets_one_per_octet() -> None:
    pdu = compose(text="@£$ Üèé")
    assert pdu.data_coding == 0
    assert pdu.short_message == bytes([0x00, 0x01, 0x02, 0x20, 0x5E, 0x04, 0x05])


def test_cyrillic_text_is_ucs2_big_endian() -> None:
    pdu = compose(text="Привет")
    assert pdu.data_coding == DataCoding.UCS2.value == 8
    assert pdu.short_message == "Привет".encode("utf-16-be")
    assert pdu.short_message[:2] == b"\x04\x1f"  # П is U+041F, high byte first


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("a" * 160, True),
        ("a" * 161, False),
        ("€" * 80, True),  # extension characters cost two septets (escape + code)
        ("€" * 81, False),
        ("a" * 159 + "{", False),
        ("a" * 158 + "[", True),
        ("Я" * 70, True),
        ("Я" * 71, False),
        ("a" * 69 + "Я", True),  # one Cyrillic letter makes the whole text UCS2
        ("a" * 70 + "Я", False),
    ],
)
def test_single_part_capacity(text: str, fits: bool) -> None:
    sent = parts(text=text)
    assert len(sent) == (1 if fits else 2)
    assert all(pdu.short_message for pdu in sent)


def test_gsm_extension_characters_are_escaped() -> None:
    assert compose(text="{€}").short_message == bytes([0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29])


def test_comment_follows_the_marker() -> None:
    pdu = compose(text="Code 1234", comment="login page")
    marker = bytes([0x0A, 0x1B, 0x3D, 0x1B, 0x3D, 0x1B, 0x3D, 0x0A])  # "\n~~~\n" in GSM
    assert COMMENT_MARKER == "\n~~~\n"
    assert pdu.short_message == b"Code 1234" + marker + b"login page"


def test_comment_in_ucs2_message() -> None:
    pdu = compose(text="Код 1234", comment="вход")
    assert pdu.data_coding == 8
    assert pdu.short_message == "Код 1234\n~~~\nвход".encode("utf-16-be")


def test_comment_counts_towards_the_part() -> None:
    # The comment travels inside the message the provider glues, then strips; every part
    # stays a valid 160-septet SMS (docs/composition.md, "Comments").
    assert compose(text="a" * 147, comment="c" * 5).short_message.endswith(b"c" * 5)
    assert len(parts(text="a" * 147, comment="c" * 6)) == 2


def test_comment_outside_the_text_alphabet_is_handled() -> None:
    with contextlib.suppress(CompositionError):
        pdu = compose(text="Code 1234", comment="вход в кабинет")
        assert pdu.data_coding == DataCoding.UCS2


def test_registered_delivery_follows_the_request() -> None:
    assert compose(registered_delivery=True).registered_delivery == 1
    assert compose(registered_delivery=False).registered_delivery == 0


def test_priority_flag() -> None:
    assert compose(priority=True).priority_flag == 1
    assert compose(priority=False).priority_flag == 0


@pytest.mark.parametrize(
    ("seconds", "period"),
    [
        (60, "000000000100000R"),
        (3600, "000000010000000R"),
        (86400, "000001000000000R"),
        (90061, "000001010101000R"),
        (604800, "000007000000000R"),
    ],
)
def test_validity_is_relative(seconds: int, period: str) -> None:
    assert compose(validity_seconds=seconds).validity_period == period
    assert len(period) == 16


def test_schedule_in_the_future_is_absolute_utc() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    assert compose(schedule_at=moment).schedule_delivery_time == "300102030405600+"
    moscow = datetime(2030, 1, 2, 6, 4, 5, tzinfo=timezone(timedelta(hours=3)))
    assert compose(schedule_at=moscow).schedule_delivery_time == "300102030405000+"


@pytest.mark.parametrize("moment", [NOW, NOW - timedelta(seconds=1), NOW - timedelta(days=3)])
def test_schedule_not_in_the_future_sends_now(moment: datetime) -> None:
    assert compose(schedule_at=moment).schedule_delivery_time == ""


@pytest.mark.parametrize(
    ("sender", "ton", "npi"),
    [
        ("79991234567", Ton.INTERNATIONAL, Npi.ISDN),
        ("+79991234567", Ton.INTERNATIONAL, Npi.ISDN),
        ("123456789", Ton.INTERNATIONAL, Npi.ISDN),
        ("12345678", Ton.NETWORK_SPECIFIC, Npi.UNKNOWN),
        ("1234", Ton.NETWORK_SPECIFIC, Npi.UNKNOWN),
        ("SMSC.RU", 5, 1),
        ("Shop 24", 5, 1),
        ("12ab", 5, 1),
    ],
)
def test_sender_numbering(sender: str, ton: int, npi: int) -> None:
    pdu = compose(sender_id=sender)
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (ton, npi)


def test_alphanumeric_numbering_comes_from_settings() -> None:
    settings = SmppSettings(source_addr="Brand", source_addr_ton=2, source_addr_npi=0)
    pdu = compose(settings=settings)
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("Brand", 2, 0)
    assert compose(settings=settings, sender_id="Other").source_addr == "Other"


def test_international_sender_is_sent_as_digits() -> None:
    assert compose(sender_id="+79991234567").source_addr == "79991234567"


@given(st.text(min_size=1, max_size=200))
def test_any_text_gives_a_pdu_or_a_composition_error(text: str) -> None:
    body = encode_text(text, choose_coding(text))
    single = len(body) <= (160 if choose_coding(text) is DataCoding.GSM7 else 140)
    try:
        sent = parts(text=text)
    except CompositionError as exc:
        code: str | None = exc.code
    else:
        code = None
    if code is not None:
        # Texts the provider would read as another kind of message are refused, never sent.
        assert code in {"reserved_prefix", "text_contains_comment_marker"}, code
        return
    assert all(pdu.data_coding in {DataCoding.GSM7, DataCoding.UCS2} for pdu in sent)
    if single:
        assert [pdu.short_message for pdu in sent] == [body]
    else:
        assert len(sent) > 1
