"""Properties of encode + split over any text: it round-trips, every part is a valid SMS, and
parts are as full as the table allows without cutting a GSM escape or a surrogate pair."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.compose import COMMENT_MARKER, BindProfile, CompositionSettings
from gateway.compose.channels import PREFIXES
from tests.compose.composecheck import PROFILE, air_octets, compose, decode, piece, reassemble

MODES = (
    CompositionSettings(max_parts=255),
    CompositionSettings(max_parts=255, reference_bits=16),
    CompositionSettings(max_parts=255, split="sar"),
    CompositionSettings(max_parts=255, split="payload"),
)
GSM_EXTENSION = "\f^{}\\[~]|€"
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Per-character cost in the part's units, computed here from the standards, not the package.
SEPTETS = dict.fromkeys(GSM_BASIC, 1) | dict.fromkeys(GSM_EXTENSION, 2)

gsm_texts = st.text(alphabet=GSM_BASIC + GSM_EXTENSION, min_size=1, max_size=1200)
mixed_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_BASIC + GSM_EXTENSION),
        st.characters(min_codepoint=0x400, max_codepoint=0x4FF),  # Cyrillic
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji, astral
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=700,
)
# Long texts come rarely from st.text alone: repeat a drawn text up to 150-1000 characters.
long_texts = st.builds(
    lambda text, length: (text * length)[:length],
    mixed_texts,
    st.integers(min_value=150, max_value=1000),
)
latin1_texts = st.text(alphabet=st.characters(max_codepoint=0xFF), min_size=1, max_size=800)


def plain(text: str) -> str:
    """Texts the sms channel refuses for what they say, not how long they are, are skipped."""
    assume(COMMENT_MARKER not in text + "\n")
    assume(not text.lstrip().startswith(tuple(PREFIXES.values())))
    return text


def cost(char: str, data_coding: int) -> int:
    if data_coding & 0x0C == 0x08:
        return len(char.encode("utf-16-be"))
    if data_coding & 0x0C == 0x04:
        return 1
    return SEPTETS[char]


def capacity(settings: CompositionSettings, data_coding: int, parts: int) -> int:
    gsm = data_coding & 0x0C == 0
    if parts == 1:
        return 160 if gsm else 140
    wide = settings.split == "udh" and settings.reference_bits == 16
    return (152 if gsm else 133) if wide else (153 if gsm else 134)


def check(text: str, mode: CompositionSettings, profile: BindProfile = PROFILE) -> None:
    composed = compose(mode, profile, text=text)
    coding = composed.parts[0].data_coding
    assert decode(reassemble(composed.parts), coding) == text
    assert all(len(pdu.short_message) <= 254 for pdu in composed.parts)
    if mode.split == "payload" and composed.segments > 1:
        # One submit; the provider cuts it into the segments counted here.
        _check_parts(_recut(text, mode, coding, composed.segments), mode, coding)
        return
    assert all(air_octets(pdu) <= 140 for pdu in composed.parts)
    _check_parts([decode(piece(pdu).body, coding) for pdu in composed.parts], mode, coding)


def _check_parts(texts: list[str], mode: CompositionSettings, coding: int) -> None:
    """Each part decodes alone (nothing cut), fits, and could not take the next character."""
    limit = capacity(mode, coding, len(texts))
    sizes = [sum(cost(char, coding) for char in part) for part in texts]
    assert all(0 < size <= limit for size in sizes)
    for size, following in zip(sizes, texts[1:], strict=False):
        assert size + cost(following[0], coding) > limit


def _recut(text: str, mode: CompositionSettings, coding: int, segments: int) -> list[str]:
    """The greedy cut message_payload's segment count stands for, redone here."""
    limit, parts, current, size = capacity(mode, coding, segments), [], "", 0
    for char in text:
        if size + cost(char, coding) > limit:
            parts.append(current)
            current, size = "", 0
        current += char
        size += cost(char, coding)
    return [*parts, current]


@settings(max_examples=150, deadline=None)
@given(gsm_texts)
def test_gsm_texts_round_trip_in_every_mode(text: str) -> None:
    for mode in MODES:
        check(plain(text), mode)


@settings(max_examples=300, deadline=None)
@given(st.one_of(mixed_texts, long_texts))
def test_any_unicode_text_round_trips_in_every_mode(text: str) -> None:
    for mode in MODES:
        check(plain(text), mode)


@settings(max_examples=100, deadline=None)
@given(latin1_texts)
def test_latin1_texts_round_trip_on_an_iso_bind(text: str) -> None:
    iso = BindProfile(iso=True)
    for mode in MODES:
        check(plain(text), mode, iso)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=1500))
def test_binary_round_trips(data: bytes) -> None:
    for mode in MODES:
        composed = compose(mode, text=data.hex(), provider_options={"encoding": "binary"})
        assert reassemble(composed.parts) == data
        single = len(data) <= 140
        per_part = 133 if mode.reference_bits == 16 and mode.split == "udh" else 134
        assert composed.segments == (1 if single else math.ceil(len(data) / per_part))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from("aЯ€"), st.integers(min_value=1, max_value=1000))
def test_uniform_texts_follow_the_table(char: str, length: int) -> None:
    single, part = {"a": (160, 153), "€": (80, 76), "Я": (70, 67)}[char]
    expected = 1 if length <= single else math.ceil(length / part)
    for mode in MODES[::2]:  # 8-bit reference header, and SAR (same sizes)
        assert compose(mode, text=char * length).segments == expected
