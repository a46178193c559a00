"""Send requests composed for the sender: the SMPP settings turned into composition inputs.

The composition itself lives in :mod:`gateway.compose` (pure, no I/O). This module binds it
to the ``smpp`` settings (default sender, TON/NPI, the ``system_type`` ISO flag) and offers
the sender :func:`compose_recipients`: every recipient's parts, long messages included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from gateway.compose import (
    COMMENT_MARKER,
    BindProfile,
    ComposedMessage,
    CompositionError,
    CompositionSettings,
    bind_flags,
    for_recipient,
    message_reference,
    prepare_message,
)
from gateway.config import SmppSettings
from gateway.events.send_request import SendRequest

__all__ = [
    "COMMENT_MARKER",
    "ComposedMessage",
    "CompositionError",
    "bind_profile",
    "compose_recipients",
]


@functools.lru_cache(maxsize=16)
def bind_profile(smpp: SmppSettings) -> BindProfile:
    """What the bind fixes for every message: ISO flag, default sender, TON/NPI (computed
    once per settings object: the sender asks for every request)."""
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
