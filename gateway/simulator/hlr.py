"""HLR requests and their results (SMPP seed, "Sending an HLR request").

A submit_sm whose text is ``__HLR__`` asks the network about the destination; the answer
comes as a delivery report whose text is the HLR result::

    id:<id> stat:<status> err:<err> imsi:<imsi> msc:<msc> mcc:<mcc> mnc:<mnc> cn:<cn>
    net:<net> rcn:<rcn> rnet:<rnet>

with the string fields (country and operator names) urlencoded as PHP's ``urlencode`` does
(spaces as ``+``). The simulator answers from a small numbering table: the phone's country
code picks the country, a stable hash of the phone picks one of its operators and the IMSI
and MSC digits, so a phone always gets the same plausible result. A subscriber that is not
reachable (``err`` other than 0) has no IMSI or MSC, as there is no registration to report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from urllib.parse import quote_plus

from gateway.settings.simulator import DlrOutcome
from gateway.smpp.constants import TlvTag
from gateway.smpp.pdu import DeliverSm, SubmitSm
from gateway.smpp.textcoding import decode_text

from .dlr import MESSAGE_TYPE_HLR, AcceptedMessage, report_pdu

HLR_REQUEST = "__HLR__"


@dataclass(frozen=True, slots=True)
class Network:
    """A mobile network as an HLR names it."""

    mcc: str
    mnc: str
    country: str
    operator: str


_RUSSIA = "Russian Federation"
# Country code -> its networks. The MegaFon entry is the seed's own example; the others are
# the public MCC/MNC assignments (ITU-T E.212) of a few large operators.
NETWORKS: Mapping[str, tuple[Network, ...]] = MappingProxyType(
    {
        "7": (
            Network("250", "01", _RUSSIA, "Mobile TeleSystems"),
            Network("250", "02", _RUSSIA, "MegaFON open Joint Stock Company"),
            Network("250", "20", _RUSSIA, "Tele2"),
            Network("250", "99", _RUSSIA, "Beeline"),
        ),
        "77": (Network("401", "01", "Kazakhstan", "Beeline"),),
        "375": (Network("257", "01", "Belarus", "A1"),),
        "380": (Network("255", "01", "Ukraine", "Vodafone"),),
        "49": (Network("262", "01", "Germany", "Telekom"),),
    }
)


@dataclass(frozen=True, slots=True)
class HlrResult:
    """The fields of one HLR result, unencoded."""

    message_id: str
    stat: str
    err: int
    imsi: str = ""
    msc: str = ""
    mcc: str = ""
    mnc: str = ""
    cn: str = ""
    net: str = ""
    rcn: str = ""
    rnet: str = ""

    def text(self) -> str:
        """The result exactly as the provider writes it."""
        names = (quote_plus(v) for v in (self.cn, self.net, self.rcn, self.rnet))
        cn, net, rcn, rnet = names
        return (
            f"id:{self.message_id} stat:{self.stat} err:{self.err:03d} imsi:{self.imsi} "
            f"msc:{self.msc} mcc:{self.mcc} mnc:{self.mnc} cn:{cn} net:{net} "
            f"rcn:{rcn} rnet:{rnet}"
        )


def is_hlr_request(pdu: SubmitSm, *, iso: bool) -> bool:
    """Whether ``pdu`` is an HLR request: its whole text is ``__HLR__``.

    The text is read as the provider reads it: on an ISO bind coding 0 is ISO-8859-1.
    """
    data = pdu.short_message
    payload = pdu.tlv(TlvTag.MESSAGE_PAYLOAD)
    if not data and payload is not None:
        data = payload.value
    if len(data) > len(HLR_REQUEST) * 2:  # UCS2 is the widest way to write it
        return False
    coding = pdu.data_coding
    text = data.decode("latin-1") if iso and coding & 0x0F == 0 else decode_text(data, coding)
    return text == HLR_REQUEST


def hlr_result(message_id: str, phone: str, outcome: DlrOutcome) -> HlrResult:
    """The simulated HLR answer for ``phone`` (digits, optionally with ``+``)."""
    digits = phone.lstrip("+")
    network = network_of(digits)
    if network is None:
        return HlrResult(message_id, outcome.stat, outcome.err)
    fields = HlrResult(
        message_id,
        outcome.stat,
        outcome.err,
        mcc=network.mcc,
        mnc=network.mnc,
        cn=network.country,
        net=network.operator,
    )
    if outcome.err != 0:
        return fields
    seed = _digits(digits, 21)
    msin = seed[: 15 - len(network.mcc) - len(network.mnc)]
    country = _country_code(digits) or ""
    msc = (country + seed[10:])[:11]
    return HlrResult(
        message_id,
        outcome.stat,
        outcome.err,
        imsi=network.mcc + network.mnc + msin,
        msc=msc,
        mcc=network.mcc,
        mnc=network.mnc,
        cn=network.country,
        net=network.operator,
    )


def network_of(phone: str) -> Network | None:
    """The network a phone number is registered in, or ``None`` outside the table."""
    country = _country_code(phone)
    if country is None:
        return None
    networks = NETWORKS[country]
    return networks[int(_digits(phone, 2)) % len(networks)]


def build_hlr_result(
    message: AcceptedMessage,
    outcome: DlrOutcome,
    *,
    cost: Decimal,
    mccmnc: str,
) -> DeliverSm:
    """The deliver_sm answering an HLR request: the result text, message type 4 in the
    0x2001 flags, and the subscriber's network in the mccmnc TLV (``mccmnc`` outside the
    numbering table)."""
    result = hlr_result(message.message_id, message.destination_addr, outcome)
    network_code = result.mcc + result.mnc or mccmnc
    return report_pdu(
        message, outcome, result.text(), cost=cost, mccmnc=network_code, flags=MESSAGE_TYPE_HLR
    )


def _country_code(phone: str) -> str | None:
    # Longest prefix first: 77 (Kazakhstan) before 7 (Russia).
    for length in (3, 2, 1):
        if phone[:length] in NETWORKS:
            return phone[:length]
    return None


def _digits(phone: str, count: int) -> str:
    """``count`` decimal digits fixed by the phone number."""
    digest = hashlib.blake2b(phone.encode(), digest_size=16).digest()
    return str(int.from_bytes(digest, "big")).zfill(count)[-count:]
