"""Text to short_message octets and back: GSM 03.38 (unpacked septets), Latin-1 and UCS2.

The provider takes ``data_coding`` 0 (GSM 7-bit), 4 (ISO-8859-1, on binds with
``system_type`` ISO) and 8 (UCS2) (SMPP seed, "Sending a message"). GSM septets travel one
per octet, as SMPP carries them; a character of the extension table costs two septets
(escape 0x1B, then its code).
"""

from __future__ import annotations

from types import MappingProxyType

from .constants import DataCoding
from .errors import SmppError

# GSM 03.38 default alphabet, index = septet value (3GPP TS 23.038 section 6.2.1).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table (6.2.1.1), reached through the escape septet 0x1B.
_GSM_EXTENDED = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_ESCAPE = 0x1B
_ENCODE_BASIC = {char: code for code, char in enumerate(_GSM_BASIC) if code != _ESCAPE}
_DECODE_EXTENDED = {code: char for char, code in _GSM_EXTENDED.items()}

assert len(_GSM_BASIC) == 128


class EncodingError(SmppError):
    """The text cannot be written in the requested coding; sending it again will not help."""


# One str.translate table does the whole encoding in C: each GSM character becomes its
# septet(s) as code points below 0x80, and every ASCII character outside the alphabet
# becomes a non-ASCII marker, so "is it GSM?" is "is the translation ASCII?".
_NOT_GSM = "\uffff"
_TRANSLATE = MappingProxyType(
    dict.fromkeys(range(128), _NOT_GSM)
    | {ord(char): chr(code) for char, code in _ENCODE_BASIC.items()}
    | {ord(char): chr(_ESCAPE) + chr(code) for char, code in _GSM_EXTENDED.items()}
)


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` exists in GSM 03.38 (basic or extension)."""
    return text.translate(_TRANSLATE).isascii()


def encode_gsm7(text: str) -> bytes:
    """GSM 03.38 septets, one per octet; extension characters as escape pairs."""
    septets = text.translate(_TRANSLATE)
    if not septets.isascii():
        bad = next(c for c in text if not c.translate(_TRANSLATE).isascii())
        raise EncodingError(f"{bad!r} is not in the GSM 03.38 alphabet")
    return septets.encode("ascii")


def gsm7_or_none(text: str) -> bytes | None:
    """:func:`encode_gsm7` of ``text``, or ``None`` when it is not all GSM 03.38 (without
    looking for the character at fault)."""
    septets = text.translate(_TRANSLATE)
    return septets.encode("ascii") if septets.isascii() else None


def decode_gsm7(data: bytes) -> str:
    """Text of unpacked GSM 03.38 septets; unknown escapes read as the basic character."""
    chars: list[str] = []
    escaped = False
    for octet in data:
        septet = octet & 0x7F
        if escaped:
            chars.append(_DECODE_EXTENDED.get(septet, _GSM_BASIC[septet]))
            escaped = False
        elif septet == _ESCAPE:
            escaped = True
        else:
            chars.append(_GSM_BASIC[septet])
    return "".join(chars)


def choose_coding(text: str) -> DataCoding:
    """GSM 7-bit when the text allows it, UCS2 otherwise."""
    return DataCoding.GSM7 if is_gsm7(text) else DataCoding.UCS2


def encode_text(text: str, coding: DataCoding) -> bytes:
    """``text`` in ``coding``; raises :class:`EncodingError` when it does not fit."""
    if coding is DataCoding.GSM7:
        return encode_gsm7(text)
    if coding is DataCoding.LATIN1:
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise EncodingError(str(exc)) from None
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-16 form
        raise EncodingError(str(exc)) from None


def decode_text(data: bytes, data_coding: int) -> str:
    """Text of a short_message in the given data_coding (unknown codings read as Latin-1)."""
    coding = data_coding & 0x0F if data_coding < 0xF0 else 0
    if coding == DataCoding.UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == 0:
        return decode_gsm7(data)
    return data.decode("latin-1")
