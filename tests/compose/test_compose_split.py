"""Long messages: part sizes, headers, SAR TLVs, message_payload, the parts limit."""

from __future__ import annotations

import pytest

from gateway.compose import CompositionError, CompositionSettings, Encoding
from gateway.compose.split import pack
from tests.compose.composecheck import (
    PHONE,
    air_octets,
    compose,
    decode,
    piece,
    reassemble,
)

UDH8 = CompositionSettings(max_parts=255)
UDH16 = CompositionSettings(max_parts=255, reference_bits=16)
SAR = CompositionSettings(max_parts=255, split="sar")
PAYLOAD = CompositionSettings(max_parts=255, split="payload")


@pytest.mark.parametrize(
    ("settings", "char", "length", "parts"),
    [
        # GSM 7-bit: 160 alone, 153 per part (152 under a 16-bit reference).
        (UDH8, "a", 160, 1),
        (UDH8, "a", 161, 2),
        (UDH8, "a", 306, 2),
        (UDH8, "a", 307, 3),
        (UDH16, "a", 304, 2),
        (UDH16, "a", 305, 3),
        (SAR, "a", 306, 2),
        (SAR, "a", 307, 3),
        # UCS2: 70 alone, 67 per part (66).
        (UDH8, "Я", 70, 1),
        (UDH8, "Я", 71, 2),
        (UDH8, "Я", 134, 2),
        (UDH8, "Я", 135, 3),
        (UDH16, "Я", 132, 2),
        (UDH16, "Я", 133, 3),
        (SAR, "Я", 135, 3),
        # An extension character costs two septets.
        (UDH8, "€", 80, 1),
        (UDH8, "€", 81, 2),
    ],
)
def test_part_counts(settings: CompositionSettings, char: str, length: int, parts: int) -> None:
    composed = compose(settings, text=char * length)
    assert composed.part_count == composed.segments == parts
    assert decode(reassemble(composed.parts), composed.parts[0].data_coding) == char * length


@pytest.mark.parametrize(
    ("settings", "octets", "parts"),
    [
        (UDH8, 140, 1),
        (UDH8, 141, 2),
        (UDH8, 268, 2),
        (UDH8, 269, 3),
        (UDH16, 266, 2),
        (UDH16, 267, 3),
    ],
)
def test_binary_part_counts(settings: CompositionSettings, octets: int, parts: int) -> None:
    data = bytes(range(256)) * 2
    composed = compose(settings, text=data[:octets].hex(), provider_options={"encoding": "binary"})
    assert composed.part_count == parts
    assert reassemble(composed.parts) == data[:octets]


def test_single_sms_has_no_header_and_no_reference() -> None:
    composed = compose(text="Hello")
    (pdu,) = composed.parts
    assert pdu.esm_class == 0
    assert pdu.tlvs == ()
    assert pdu.short_message == b"Hello"
    assert composed.reference is None


def test_eight_bit_reference_header() -> None:
    composed = compose(UDH8, reference=0x1234, text="a" * 161)
    first, second = composed.parts
    assert first.short_message[:6] == bytes([0x05, 0x00, 0x03, 0x34, 0x02, 0x01])
    assert second.short_message[:6] == bytes([0x05, 0x00, 0x03, 0x34, 0x02, 0x02])
    assert first.short_message[6:] == b"a" * 153
    assert second.short_message[6:] == b"a" * 8
    assert {first.esm_class, second.esm_class} == {0x40}
    assert composed.reference == 0x34


def test_sixteen_bit_reference_header() -> None:
    composed = compose(UDH16, reference=0x1234, text="Я" * 67)
    first, second = compose(UDH16, reference=0x1234, text="Я" * 71).parts
    assert composed.part_count == 1
    assert first.short_message[:7] == bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01])
    assert len(first.short_message) == 7 + 66 * 2
    assert second.short_message[:7] == bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02])


def test_sar_tlvs_and_no_header() -> None:
    composed = compose(SAR, reference=0x12345, text="a" * 400)
    assert composed.part_count == 3
    for number, pdu in enumerate(composed.parts, start=1):
        assert pdu.esm_class == 0
        assert [(tlv.tag, tlv.value) for tlv in pdu.tlvs] == [
            (0x020C, bytes([0x23, 0x45])),
            (0x020E, bytes([3])),
            (0x020F, bytes([number])),
        ]
    assert [len(pdu.short_message) for pdu in composed.parts] == [153, 153, 94]
    assert composed.reference == 0x2345


def test_payload_is_one_submit_counted_in_segments() -> None:
    composed = compose(PAYLOAD, text="Я" * 200)
    (pdu,) = composed.parts
    assert pdu.short_message == b""
    assert [tlv.tag for tlv in pdu.tlvs] == [0x0424]
    assert pdu.tlvs[0].value == ("Я" * 200).encode("utf-16-be")
    assert composed.segments == 3  # 67 + 67 + 66
    assert composed.reference is None


def test_payload_is_used_only_for_long_messages() -> None:
    (pdu,) = compose(PAYLOAD, text="a" * 160).parts
    assert pdu.short_message == b"a" * 160
    assert pdu.tlvs == ()


def test_escape_pair_is_never_split() -> None:
    # 152 'a' then '€' (escape + 0x65) would straddle septets 153/154: it moves on whole.
    composed = compose(text="a" * 152 + "€" + "b" * 10)
    first, second = (piece(pdu).body for pdu in composed.parts)
    assert first == b"a" * 152
    assert second == bytes([0x1B, 0x65]) + b"b" * 10


def test_surrogate_pair_is_never_split() -> None:
    text = "Я" * 66 + "😀" + "Я" * 10
    composed = compose(text=text)
    first, second = (piece(pdu).body for pdu in composed.parts)
    assert first == ("Я" * 66).encode("utf-16-be")
    assert second.decode("utf-16-be") == "😀" + "Я" * 10


def test_parts_fit_140_octets_on_the_air() -> None:
    for text in ("a" * 1000, "{" * 500, "Я" * 500, "😀" * 250):
        for settings in (UDH8, UDH16, SAR):
            composed = compose(settings, text=text)
            assert all(air_octets(pdu) <= 140 for pdu in composed.parts)


@pytest.mark.parametrize("split", ["udh", "sar", "payload"])
def test_too_many_parts(split: str) -> None:
    settings = CompositionSettings(max_parts=2, split=split)
    assert compose(settings, text="a" * 306).segments == 2
    with pytest.raises(CompositionError) as caught:
        compose(settings, text="a" * 307)
    assert caught.value.code == "too_many_parts"
    assert "3 SMS parts" in str(caught.value)


def test_default_limit_holds_the_http_api_text_limit() -> None:
    # The provider's HTTP API takes 1000 characters; in UCS2 that is 15 parts.
    assert compose(CompositionSettings(), text="Я" * 1000).part_count == 15


def test_every_part_goes_to_the_recipient_with_the_same_fields() -> None:
    composed = compose(text="a" * 400, validity_seconds=3600, sender_id="Shop")
    assert composed.phone == PHONE
    assert {pdu.destination_addr for pdu in composed.parts} == {PHONE}
    assert {pdu.validity_period for pdu in composed.parts} == {"000000010000000R"}
    assert {pdu.source_addr for pdu in composed.parts} == {"Shop"}
    assert composed.encoding is Encoding.GSM7


def test_pack_is_greedy_over_whole_units() -> None:
    assert pack([b"a", b"bb", b"c", b"dd"], 3) == [b"abb", b"cdd"]
    assert pack([b"aa", b"bb"], 3) == [b"aa", b"bb"]
    assert pack([], 3) == []
