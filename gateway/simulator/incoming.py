"""Incoming SMS as the provider forwards them over SMPP (SMPP seed, "Receiving incoming
messages"): DELIVER_SM from the subscriber to the account's number, on a receiver or
transceiver bind.

The text is encoded and split by the gateway's own composition (:mod:`gateway.compose`), as
a handset would send it: GSM 7-bit, Latin-1 (coding 1, what an ISO bind gets instead of
GSM), UCS2 or binary octets; a long message as parts with an 8-bit or 16-bit reference
concatenation header (esm_class UDHI), as parts with the sar_* TLVs, or as one DELIVER_SM
with message_payload.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.compose.encoding import Encoded, Encoding, choose_encoding, data_coding, encode
from gateway.compose.split import frame, plan
from gateway.settings.composition import MAX_PARTS_LIMIT, CompositionSettings
from gateway.settings.simulator import CODINGS, CONCAT_MODES
from gateway.smpp.constants import Npi, Ton
from gateway.smpp.pdu import DeliverSm

_REFERENCE_SPACE = {8: 0x100, 16: 0x10000}


@dataclass(frozen=True, slots=True)
class IncomingSpec:
    """One incoming message to build: who sends it to which number, and how it travels."""

    source: str
    destination: str
    text: str | bytes
    coding: str = "auto"
    concat: str = "udh8"

    def __post_init__(self) -> None:
        if self.coding not in CODINGS:
            raise ValueError(f"coding must be one of {', '.join(CODINGS)}")
        if self.concat not in CONCAT_MODES:
            raise ValueError(f"concat must be one of {', '.join(CONCAT_MODES)}")
        if (self.coding == "binary") != isinstance(self.text, bytes):
            raise ValueError("binary messages take bytes, every other coding takes str")


def build_incoming(spec: IncomingSpec, *, reference: int = 0, iso: bool = False) -> list[DeliverSm]:
    """The DELIVER_SMs carrying ``spec``, in order; ``reference`` numbers a long message
    (masked to its field), ``iso`` is the bind's ISO flag (no GSM 7-bit then).

    Raises :class:`~gateway.compose.CompositionError` when the text cannot be written in
    the coding asked for or needs more than 255 parts.
    """
    split_mode, bits = CONCAT_MODES[spec.concat]
    settings = CompositionSettings(split=split_mode, reference_bits=bits, max_parts=MAX_PARTS_LIMIT)
    encoded = _encoded(spec, iso=iso)
    split = frame(plan(encoded, settings), settings, reference)
    coding = data_coding(encoded.encoding, flash=False)
    return [
        DeliverSm(
            source_addr_ton=Ton.INTERNATIONAL,
            source_addr_npi=Npi.ISDN,
            source_addr=spec.source,
            dest_addr_ton=Ton.INTERNATIONAL,
            dest_addr_npi=Npi.ISDN,
            destination_addr=spec.destination,
            esm_class=part.esm_class,
            data_coding=coding,
            short_message=part.short_message,
            tlvs=part.tlvs,
        )
        for part in split.parts
    ]


def _encoded(spec: IncomingSpec, *, iso: bool) -> Encoded:
    if isinstance(spec.text, bytes):
        return Encoded(Encoding.BINARY, spec.text)
    return encode(spec.text, choose_encoding(spec.text, CODINGS[spec.coding], iso=iso))


class References:
    """Concatenation references, cycling per destination number as an SMSC numbers the
    messages it forwards to one recipient."""

    def __init__(self) -> None:
        self._next: dict[str, Iterator[int]] = {}

    def take(self, destination: str, concat: str) -> int:
        """The next reference for ``destination``, within the field ``concat`` uses."""
        counter = self._next.get(destination)
        if counter is None:
            counter = self._next[destination] = itertools.count(1)
        space = _REFERENCE_SPACE[CONCAT_MODES[concat][1]]
        return next(counter) % space
