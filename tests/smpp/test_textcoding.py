"""Text to short_message octets: GSM 03.38 unpacked septets, Latin-1 and UCS2."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.constants import DataCoding
from gateway.smpp.textcoding import (
    EncodingError,
    choose_coding,
    decode_gsm7,
    decode_text,
    encode_gsm7,
    encode_text,
    is_gsm7,
)

# 3GPP TS 23.038 section 6.2.1, written out independently of the module under test.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D}
GSM_EXTENSION |= {"]": 0x3E, "|": 0x40, "€": 0x65}
GSM_CHARS = sorted(set(GSM_BASIC) - {"\x1b"} | set(GSM_EXTENSION))
GSM_TEXT = st.text(st.sampled_from(GSM_CHARS), max_size=200)


@pytest.mark.parametrize(
    ("char", "septet"),
    [
        *[("@", 0x00), ("£", 0x01), ("\n", 0x0A), ("Δ", 0x10), ("_", 0x11), ("É", 0x1F)],
        *[(" ", 0x20), ("¤", 0x24), ("¡", 0x40), ("A", 0x41), ("§", 0x5F), ("¿", 0x60)],
        *[("a", 0x61), ("ü", 0x7E), ("à", 0x7F)],
    ],
)
def test_basic_table_anchors(char: str, septet: int) -> None:
    assert encode_gsm7(char) == bytes([septet])
    assert decode_gsm7(bytes([septet])) == char


def test_whole_basic_table() -> None:
    for septet, char in enumerate(GSM_BASIC):
        if septet != 0x1B:
            assert encode_gsm7(char) == bytes([septet]), char


@pytest.mark.parametrize(("char", "code"), sorted(GSM_EXTENSION.items()))
def test_extension_characters_cost_two_septets(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == char


@given(GSM_TEXT)
@settings(max_examples=200)
def test_gsm_round_trip(text: str) -> None:
    octets = encode_gsm7(text)
    assert decode_gsm7(octets) == text
    assert decode_text(octets, DataCoding.GSM7) == text
    assert encode_text(text, DataCoding.GSM7) == octets
    assert len(octets) == len(text) + sum(char in GSM_EXTENSION for char in text)
    assert all(octet < 0x80 for octet in octets)
    assert is_gsm7(text)
    assert choose_coding(text) is DataCoding.GSM7


@pytest.mark.parametrize("text", ["Привет", "`", "\x1b", "ç", "€uro 🙂"])
def test_outside_gsm_alphabet(text: str) -> None:
    assert not is_gsm7(text)
    assert choose_coding(text) is DataCoding.UCS2
    with pytest.raises(EncodingError):
        encode_gsm7(text)


def test_unknown_escape_reads_as_basic_character_and_lone_escape_is_dropped() -> None:
    assert decode_gsm7(b"\x1b\x41") == "A"
    assert decode_gsm7(b"A\x1b") == "A"


@given(st.binary(max_size=300))
@settings(max_examples=200)
def test_any_octets_decode_in_every_coding(data: bytes) -> None:
    for coding in (0x00, 0x01, 0x03, 0x04, 0x08, 0x18, 0xF0, 0xF4):
        assert isinstance(decode_text(data, coding), str)


@given(st.text(max_size=200))  # hypothesis leaves lone surrogates out of text() by default
@settings(max_examples=200)
def test_ucs2_round_trip(text: str) -> None:
    octets = encode_text(text, DataCoding.UCS2)
    assert decode_text(octets, DataCoding.UCS2) == text
    assert len(octets) == 2 * sum(1 if ord(char) < 0x10000 else 2 for char in text)


def test_ucs2_is_big_endian() -> None:
    assert encode_text("Пр€", DataCoding.UCS2) == bytes.fromhex("041f044020ac")


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_lone_surrogate_cannot_be_ucs2(text: str) -> None:
    with pytest.raises(EncodingError):
        encode_text(text, DataCoding.UCS2)


@given(st.text(st.characters(max_codepoint=0xFF), max_size=200))
@settings(max_examples=100)
def test_latin1_round_trip(text: str) -> None:
    octets = encode_text(text, DataCoding.LATIN1)
    assert octets == text.encode("latin-1")
    assert decode_text(octets, DataCoding.LATIN1) == text


def test_latin1_refuses_wider_characters() -> None:
    with pytest.raises(EncodingError):
        encode_text("Ж", DataCoding.LATIN1)
