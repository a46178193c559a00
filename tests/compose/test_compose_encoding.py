"""Choosing the alphabet: automatic, per request, on an ISO bind; binary octets."""

from __future__ import annotations

import pytest

from gateway.compose import BindProfile, Encoding
from gateway.compose.encoding import choose_encoding, data_coding
from tests.compose.composecheck import compose, decode, reassemble, refused

ISO = BindProfile(iso=True)


@pytest.mark.parametrize(
    ("text", "iso", "encoding", "coding"),
    [
        ("Hello @home", False, Encoding.GSM7, 0),
        ("Prix: 5€ {promo}", False, Encoding.GSM7, 0),  # extension table
        ("Ça coûte", False, Encoding.UCS2, 8),  # û is not in GSM 03.38
        ("Привет", False, Encoding.UCS2, 8),
        ("Hi 😀", False, Encoding.UCS2, 8),
        ("Ça coûte", True, Encoding.LATIN1, 4),
        ("Hello", True, Encoding.LATIN1, 4),
        ("Prix: 5€", True, Encoding.UCS2, 8),  # € is not in ISO-8859-1
        ("Привет", True, Encoding.UCS2, 8),
    ],
)
def test_automatic_choice(text: str, iso: bool, encoding: Encoding, coding: int) -> None:
    composed = compose(profile=BindProfile(iso=iso), text=text)
    assert composed.encoding is encoding
    assert composed.parts[0].data_coding == coding
    assert decode(reassemble(composed.parts), coding) == text


@pytest.mark.parametrize(
    ("requested", "text", "coding", "octets"),
    [
        ("ucs2", "Hi", 8, b"\x00H\x00i"),
        ("latin1", "Hé", 4, b"H\xe9"),
        ("gsm7", "Hé", 0, b"H\x05"),
        ("auto", "Hé", 0, b"H\x05"),
    ],
)
def test_requested_encoding(requested: str, text: str, coding: int, octets: bytes) -> None:
    composed = compose(text=text, provider_options={"encoding": requested})
    assert (composed.parts[0].data_coding, composed.parts[0].short_message) == (coding, octets)


def test_latin1_is_available_on_any_bind_and_ucs2_on_iso() -> None:
    on_iso = compose(profile=ISO, text="Hi", provider_options={"encoding": "ucs2"})
    assert on_iso.encoding is Encoding.UCS2
    assert compose(text="Hi", provider_options={"encoding": "latin1"}).encoding is (Encoding.LATIN1)


@pytest.mark.parametrize(
    ("requested", "text"),
    [("gsm7", "Привет"), ("latin1", "Привет"), ("latin1", "5€"), ("gsm7", "û"), ("ucs2", "\ud800")],
)
def test_text_outside_the_requested_alphabet(requested: str, text: str) -> None:
    message = refused("text_not_encodable", text=text, provider_options={"encoding": requested})
    assert requested in message


def test_lone_surrogate_cannot_go_automatically_either() -> None:
    refused("text_not_encodable", text="a\udc00b")


def test_gsm7_is_unavailable_on_an_iso_bind() -> None:
    message = refused("encoding_unavailable", profile=ISO, provider_options={"encoding": "gsm7"})
    assert "ISO" in message


def test_binary_octets_from_hex() -> None:
    composed = compose(text="0B05 04 0B84", provider_options={"encoding": "binary"})
    assert composed.encoding is Encoding.BINARY
    (pdu,) = composed.parts
    assert (pdu.data_coding, pdu.short_message) == (4, bytes.fromhex("0b0504 0b84"))


def test_binary_ignores_the_iso_flag() -> None:
    composed = compose(profile=ISO, text="ff", provider_options={"encoding": "binary"})
    assert composed.parts[0].short_message == b"\xff"


def test_choose_encoding_and_data_coding() -> None:
    assert choose_encoding("abc", "auto", iso=False) is Encoding.GSM7
    assert choose_encoding("abc", "ucs2", iso=True) is Encoding.UCS2
    assert [data_coding(e, flash=False) for e in Encoding] == [0, 4, 8, 4]
    assert [data_coding(e, flash=True) for e in Encoding] == [0x10, 0x14, 0x18, 0x14]
