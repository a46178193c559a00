"""What composition is configured with: the ``compose`` settings section and the bind profile.

:class:`CompositionSettings` is the ``GATEWAY_COMPOSE_*`` section. :class:`BindProfile`
carries what the SMPP bind already fixes (its ``system_type`` flags, default sender and
TON/NPI, all in the ``smpp`` section); it is built from those settings by the caller, so no
value is configured twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ConfigError
from gateway.smpp.constants import Npi, Ton

SPLIT_MODES = ("udh", "sar", "payload")
REFERENCE_BITS = (8, 16)
# A concatenation header and the sar_* TLVs count parts in one octet (3GPP TS 23.040
# 9.2.3.24.1; SMPP 3.4 5.3.2.23).
MAX_PARTS_LIMIT = 255


@dataclass(frozen=True, slots=True)
class CompositionSettings:
    """How long messages are split and how numeric senders are numbered."""

    # "udh": a concatenation header in each part; "sar": sar_* TLVs (the SMSC adds the
    # header); "payload": one submit_sm with message_payload (the SMSC splits).
    split: str = "udh"
    # The reference field of the concatenation header: 8 (IEI 0x00) or 16 bits (IEI 0x08).
    reference_bits: int = 8
    # 15 parts hold the provider's 1000-character HTTP limit in UCS2 (15 x 67 = 1005), so a
    # text accepted over HTTP is not refused over SMPP.
    max_parts: int = 15
    # Numeric senders of at most 8 digits are short codes; network-specific by default.
    short_code_ton: int = int(Ton.NETWORK_SPECIFIC)
    short_code_npi: int = int(Npi.UNKNOWN)

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError("; ".join(found))

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.split not in SPLIT_MODES:
            found.append(f"split must be one of {', '.join(SPLIT_MODES)}")
        if self.reference_bits not in REFERENCE_BITS:
            found.append("reference_bits must be 8 or 16")
        if not 1 <= self.max_parts <= MAX_PARTS_LIMIT:
            found.append(f"max_parts must be 1..{MAX_PARTS_LIMIT}")
        if not (0 <= self.short_code_ton <= 6 and 0 <= self.short_code_npi <= 18):
            found.append("short_code_ton must be 0..6 and short_code_npi 0..18 (SMPP 5.2.5-6)")
        return found


@dataclass(frozen=True, slots=True)
class BindProfile:
    """What the SMPP bind fixes for every message it carries."""

    # system_type ISO: the provider reads data_coding 0 as ISO-8859-1 instead of GSM.
    iso: bool = False
    default_source: str = ""
    alphanumeric_ton: int = int(Ton.ALPHANUMERIC)
    alphanumeric_npi: int = int(Npi.ISDN)
    destination_ton: int = int(Ton.INTERNATIONAL)
    destination_npi: int = int(Npi.ISDN)


def bind_flags(system_type: str) -> frozenset[str]:
    """The flags of a ``system_type``, which the provider separates by commas ("ISO,SINGLE")."""
    return frozenset(flag.strip().upper() for flag in system_type.split(",") if flag.strip())
