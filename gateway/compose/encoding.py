"""Which alphabet a message travels in, and its characters as indivisible units of octets.

The provider takes ``coding`` 0 (GSM 7-bit), 1 (8-bit: ISO-8859-1 text or binary data) and 2
(UCS2), sent as ``data_coding = coding * 4`` (SMPP seed, "Sending a message"). With
``system_type`` ISO it reads coding 0 as ISO-8859-1 instead of GSM, so on such a bind GSM
septets are never sent: Latin-1 text goes as coding 1 instead.

Automatic choice: GSM 7-bit when every character is in GSM 03.38 (basic or extension table),
Latin-1 on an ISO bind when every character is in ISO-8859-1, UCS2 otherwise.

A message that must be split is seen as a tuple of *units*, one per character (one per
octet for binary): the octets of a GSM character (two for an extension character: escape
and code), of a UTF-16 code point (four for a surrogate pair). Splitting never cuts a unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from gateway.smpp.constants import DataCoding
from gateway.smpp.textcoding import EncodingError, encode_gsm7, is_gsm7

from .errors import CompositionError


class Encoding(StrEnum):
    GSM7 = "gsm7"
    LATIN1 = "latin1"
    UCS2 = "ucs2"
    BINARY = "binary"


DATA_CODING = MappingProxyType(
    {
        Encoding.GSM7: DataCoding.GSM7,
        Encoding.LATIN1: DataCoding.LATIN1,
        Encoding.UCS2: DataCoding.UCS2,
        Encoding.BINARY: DataCoding.LATIN1,  # coding 1 carries binary data as well
    }
)
# GSM 03.38 data coding scheme, general group 00x1: bit 4 says bits 1-0 hold the message
# class, and class 0 is shown at once and not stored: a flash SMS (3GPP TS 23.038 4).
FLASH_CLASS_0 = 0x10


def choose_encoding(text: str, requested: str, *, iso: bool) -> Encoding:
    """The encoding for ``text``: the requested one, or the automatic choice for ``auto``."""
    if requested == "auto":
        if not iso and is_gsm7(text):
            return Encoding.GSM7
        if iso and _is_latin1(text):
            return Encoding.LATIN1
        return Encoding.UCS2
    encoding = Encoding(requested)
    if encoding is Encoding.GSM7 and iso:
        raise CompositionError(
            "encoding_unavailable",
            "the bind uses system_type ISO, where the provider reads GSM 7-bit as ISO-8859-1",
        )
    return encoding


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message's octets in its encoding; cut into units only when it must be split."""

    encoding: Encoding
    octets: bytes
    text: str | None = None  # None for binary octets

    def units(self) -> tuple[bytes, ...]:
        """One unit of octets per character (per octet for binary), never to be cut."""
        if self.text is None:
            return tuple(self.octets[index : index + 1] for index in range(len(self.octets)))
        return tuple(_encode(char, self.encoding) for char in self.text)


def encode(text: str, encoding: Encoding) -> Encoded:
    """``text`` in ``encoding``; ``text_not_encodable`` when it cannot be written in it."""
    if encoding is Encoding.BINARY:
        raise ValueError("binary messages are octets already; use Encoded(BINARY, octets)")
    try:
        return Encoded(encoding, _encode(text, encoding), text)
    except (EncodingError, UnicodeEncodeError) as exc:
        raise CompositionError(
            "text_not_encodable", f"the text cannot be written in {encoding}: {exc}"
        ) from None


def _encode(text: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.GSM7:
        return encode_gsm7(text)
    return text.encode("latin-1" if encoding is Encoding.LATIN1 else "utf-16-be")


def data_coding(encoding: Encoding, *, flash: bool) -> int:
    """The submit_sm ``data_coding``: ``coding * 4``, with message class 0 for a flash SMS."""
    value = int(DATA_CODING[encoding])
    return value | FLASH_CLASS_0 if flash else value


def _is_latin1(text: str) -> bool:
    return all(ord(char) < 0x100 for char in text)
