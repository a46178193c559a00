"""Send requests composed for the sender: the SMPP settings turned into composition inputs.

The composition itself lives in :mod:`gateway.compose` (pure, no I/O). This module binds it
to the ``smpp`` settings (default sender, TON/NPI, the ``system_type`` ISO flag) and offers
the sender two entry points:

- :func:`compose_recipients`: every recipient's parts, long messages included;
- :func:`compose_submit`: the single SUBMIT_SM of one recipient, for callers that send one
  PDU: plain SMS only (``unsupported_channel`` otherwise), refusing a message that needs
  more than one part (``text_too_long``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.compose import (
    COMMENT_MARKER,
    BindProfile,
    ComposedMessage,
    CompositionError,
    CompositionSettings,
    bind_flags,
    compose_message,
    for_recipient,
    message_reference,
    prepare_message,
)
from gateway.config import SmppSettings
from gateway.events.send_request import SendRequest
from gateway.smpp.pdu import SubmitSm

__all__ = [
    "COMMENT_MARKER",
    "ComposedMessage",
    "CompositionError",
    "bind_profile",
    "compose_recipients",
    "compose_submit",
]

# compose_submit cuts nothing; any count above one is refused as text_too_long.
_SINGLE_PART = CompositionSettings(max_parts=255)
# What compose_submit's single-PDU callers have always been able to send.
SINGLE_PDU_CHANNELS = frozenset({"sms"})


def bind_profile(smpp: SmppSettings) -> BindProfile:
    """What the bind fixes for every message: ISO flag, default sender, TON/NPI."""
    return BindProfile(
        iso="ISO" in bind_flags(smpp.system_type),
        default_source=smpp.source_addr,
        alphanumeric_ton=smpp.source_addr_ton,
        alphanumeric_npi=smpp.source_addr_npi,
        destination_ton=smpp.dest_addr_ton,
        destination_npi=smpp.dest_addr_npi,
    )


def compose_recipients(
    request: SendRequest,
    smpp: SmppSettings,
    compose: CompositionSettings,
    *,
    priority: bool,
    now: datetime,
    reference: Callable[[str, str], int] = message_reference,
) -> tuple[ComposedMessage, ...]:
    """Every recipient's parts, in the order of ``request.recipients``.

    The content is validated and encoded once; ``reference(request_id, phone)`` gives each
    recipient's concatenation reference. Raises :class:`CompositionError` (nothing is to be
    sent for the request) when the content or any recipient cannot be composed.
    """
    prepared = prepare_message(request, compose, bind_profile(smpp), priority=priority, now=now)
    return tuple(
        for_recipient(prepared, phone, reference=reference(request.request_id, phone))
        for phone in request.recipients
    )


def compose_submit(
    request: SendRequest, phone: str, settings: SmppSettings, *, priority: bool, now: datetime
) -> SubmitSm:
    """The single SUBMIT_SM for one recipient; raises :class:`CompositionError` when impossible."""
    if request.channel not in SINGLE_PDU_CHANNELS:
        raise CompositionError(
            "unsupported_channel", f"channel {request.channel} needs compose_recipients"
        )
    try:
        composed = compose_message(
            request,
            phone,
            _SINGLE_PART,
            bind_profile(settings),
            reference=0,
            priority=priority,
            now=now,
        )
    except CompositionError as exc:
        if exc.code != "too_many_parts":
            raise
        raise CompositionError("text_too_long", "text needs more than one SMS part") from None
    if composed.segments > 1:
        raise CompositionError(
            "text_too_long", f"text needs more than one SMS part ({composed.segments} parts)"
        )
    return composed.parts[0]
