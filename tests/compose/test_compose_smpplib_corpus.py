"""A corpus of texts split by us and by smpplib (PyPI), an implementation no one here wrote.

``smpplib.gsm.make_parts(text, encoding)`` returns the parts' short_message octets, the
data_coding and the esm_class: GSM 7-bit (one septet per octet, like us) or its fallback
UCS2, or ISO-8859-1; 160/153 septets, 140/134 octets; an 8-bit-reference concatenation
header ``05 00 03 <ref> <total> <seq>``. Where the conventions match we must agree octet for
octet. The documented differences:

- smpplib draws its reference at random: the reference octet is compared as ours.
- smpplib cuts at fixed offsets ("FIXME: a character may be broken by splitting" in its
  source), so a part can end between a GSM escape and its character, or inside a UTF-16
  surrogate pair. Where it does, we move that character to the next part: the octet stream
  is the same, the cut points and possibly the part count differ.
- smpplib marks Latin-1 with data_coding 3 (SMPP's ISO-8859-1); the provider wants its
  coding 1, data_coding 4 (SMPP seed: ``data_coding = coding * 4``).
- smpplib's GSM table has "`" where GSM 03.38 has "§" (0x5F) and lacks the form feed of the
  extension table; those are checked on their own below.
"""

from __future__ import annotations

import pytest
from smpplib import consts
from smpplib.gsm import make_parts

from gateway.compose import BindProfile, ComposedMessage, CompositionSettings
from gateway.smpp.pdu import SubmitSm
from tests.compose.composecheck import compose, piece

SETTINGS = CompositionSettings(max_parts=255)
SAMPLES = {
    "latin": "The quick brown fox jumps over the lazy dog; 0123456789! ",
    "cyrillic": "Съешь же ещё этих мягких французских булок, да выпей чаю. ",
    "emoji": "Hi 😀 🎉 ok 👍🏽 ",
    "gsm_extension": "Price {10€} [a|b] ~x^ \\ ",
    "escape_heavy": "€€a",
    "mixed": "Заказ #42 {ok} 😀 done. ",
    "latin1": "Ça coûte 5 £, señor! Très bien. ",
}
LENGTHS: tuple[int, ...] = (1, 2, 10, 69, 70, 71, 100, 133, 134, 135, 152, 153, 154, 159, 160)
LENGTHS += (161, 200, 306, 307, 400, 459, 460, 500, 700, 999, 1000)
CORPUS = [
    pytest.param((sample * (length // len(sample) + 1))[:length], id=f"{name}-{length}")
    for name, sample in SAMPLES.items()
    for length in LENGTHS
]


def _cut_inside_a_pair(chunks: list[bytes], coding: int) -> bool:
    if coding == consts.SMPP_ENCODING_ISO10646:
        return any(0xD8 <= chunk[-2] <= 0xDB for chunk in chunks[:-1])
    return any(chunk[-1] == 0x1B for chunk in chunks[:-1])


def _compare(ours: ComposedMessage, theirs: list[bytes], coding: int, esm_class: int) -> None:
    first: SubmitSm = ours.parts[0]
    if len(theirs) == 1:
        assert esm_class == first.esm_class == 0
        assert [pdu.short_message for pdu in ours.parts] == theirs
        return
    assert esm_class == first.esm_class == 0x40
    chunks = [part[6:] for part in theirs]
    bodies = [piece(pdu).body for pdu in ours.parts]
    assert b"".join(bodies) == b"".join(chunks)  # the same octets, wherever they are cut
    if _cut_inside_a_pair(chunks, coding):
        assert ours.part_count >= len(theirs)
        assert bodies != chunks
        return
    assert ours.part_count == len(theirs)
    reference = bytes([ours.reference or 0])
    assert [pdu.short_message for pdu in ours.parts] == [
        part[:3] + reference + part[4:] for part in theirs
    ]


@pytest.mark.parametrize("text", CORPUS)
def test_gsm_bind_agrees_with_smpplib(text: str) -> None:
    theirs, coding, esm_class = make_parts(text, consts.SMPP_ENCODING_DEFAULT)
    ours = compose(SETTINGS, text=text)
    assert ours.parts[0].data_coding == {0: 0, 8: 8}[coding]
    _compare(ours, theirs, coding, esm_class)


@pytest.mark.parametrize("text", CORPUS)
def test_iso_bind_agrees_with_smpplib(text: str) -> None:
    theirs, coding, esm_class = make_parts(text, consts.SMPP_ENCODING_ISO88591)
    ours = compose(SETTINGS, BindProfile(iso=True), text=text)
    # smpplib says ISO-8859-1 with SMPP's 3; the provider takes it as its coding 1 (4).
    assert ours.parts[0].data_coding == {3: 4, 8: 8}[coding]
    _compare(ours, theirs, coding, esm_class)


def test_the_corpus_exercises_both_kinds_of_cut() -> None:
    cut = agreed = 0
    for param in CORPUS:
        (text,) = param.values
        theirs, coding, _ = make_parts(text, consts.SMPP_ENCODING_DEFAULT)
        if len(theirs) > 1 and _cut_inside_a_pair([p[6:] for p in theirs], coding):
            cut += 1
        elif len(theirs) > 1:
            agreed += 1
    assert cut >= 5
    assert agreed >= 50


@pytest.mark.parametrize(
    ("char", "ours", "theirs"),
    [
        ("§", (0, b"\x5f"), (8, b"\x00\xa7")),  # GSM 0x5F; missing from smpplib's table
        ("`", (8, b"\x00\x60"), (0, b"\x5f")),  # not in GSM 03.38; smpplib sends "§"
        ("\f", (0, b"\x1b\x0a"), (8, b"\x00\x0c")),  # extension table 0x0A
    ],
)
def test_where_smpplib_gsm_table_differs(
    char: str, ours: tuple[int, bytes], theirs: tuple[int, bytes]
) -> None:
    (part,), coding, _ = make_parts(char, consts.SMPP_ENCODING_DEFAULT)
    assert (coding, part) == theirs
    (pdu,) = compose(text=char).parts
    assert (pdu.data_coding, pdu.short_message) == ours
