"""A send request and one recipient turned into the SUBMIT_SM the provider expects.

This covers single-part SMS in GSM 7-bit or UCS2, the comment suffix and the addressing of
the provider's sample settings; longer texts and the special channels are refused with a
precise reason until the full composition lands.
"""

from __future__ import annotations

from datetime import datetime

from gateway.config import SmppSettings
from gateway.errors import GatewayError
from gateway.events.send_request import SendRequest
from gateway.smpp.constants import DataCoding, Npi, Ton
from gateway.smpp.pdu import SubmitSm
from gateway.smpp.textcoding import choose_coding, encode_text
from gateway.smpp.timefmt import absolute_time, relative_time

# Single-part capacity (GSM 03.38: 160 septets; UCS2: 70 characters = 140 octets).
SINGLE_PART_OCTETS = {DataCoding.GSM7: 160, DataCoding.UCS2: 140, DataCoding.LATIN1: 140}
# The provider drops what follows this marker before delivery (SMPP seed, "Comments").
COMMENT_MARKER = "\n~~~\n"
SUPPORTED_CHANNELS = frozenset({"sms"})


class CompositionError(GatewayError):
    """The request cannot be sent as asked; ``code`` is the result's reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def compose_submit(
    request: SendRequest, phone: str, settings: SmppSettings, *, priority: bool, now: datetime
) -> SubmitSm:
    """The SUBMIT_SM for one recipient; raises :class:`CompositionError` when impossible."""
    if request.channel not in SUPPORTED_CHANNELS:
        raise CompositionError("unsupported_channel", f"channel {request.channel} over SMPP")
    coding = choose_coding(request.text)
    body = encode_text(request.text, coding)
    if len(body) > SINGLE_PART_OCTETS[coding]:
        raise CompositionError(
            "text_too_long", f"text needs more than one SMS part ({len(body)} octets)"
        )
    if request.comment:
        # The comment rides after the marker; the provider strips it before delivery.
        body += encode_text(COMMENT_MARKER + request.comment, coding)
        if len(body) > 254:
            raise CompositionError("comment_too_long", "text and comment exceed 254 octets")
    source = request.sender_id or settings.source_addr
    source_ton, source_npi = _source_numbering(source, settings)
    schedule = request.schedule_at
    return SubmitSm(
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=source,
        dest_addr_ton=settings.dest_addr_ton,
        dest_addr_npi=settings.dest_addr_npi,
        destination_addr=phone,
        priority_flag=1 if priority else 0,
        schedule_delivery_time=absolute_time(schedule) if schedule and schedule > now else "",
        validity_period=relative_time(request.validity_seconds) if request.validity_seconds else "",
        registered_delivery=1 if request.registered_delivery else 0,
        data_coding=coding,
        short_message=body,
    )


def _source_numbering(source: str, settings: SmppSettings) -> tuple[int, int]:
    digits = source.lstrip("+")
    if digits.isdigit() and len(digits) > 8:
        return Ton.INTERNATIONAL, Npi.ISDN
    if digits.isdigit():
        return Ton.NETWORK_SPECIFIC, Npi.UNKNOWN  # short code
    return settings.source_addr_ton, settings.source_addr_npi
