"""A send request as the submit_sm PDUs of each recipient.

:func:`prepare_message` does the work that is the same for every recipient once (validate
and render the channel, choose the encoding, cut the parts, number the sender);
:func:`for_recipient` then frames the parts for one phone under that recipient's
concatenation reference. :func:`compose_message` does both for a single recipient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.events.send_request import SendRequest
from gateway.settings.composition import BindProfile, CompositionSettings
from gateway.smpp.pdu import SubmitSm

from .addressing import (
    Address,
    destination_address,
    schedule_field,
    source_address,
    validity_field,
)
from .channels import RenderedMessage, render
from .encoding import Encoded, Encoding, choose_encoding, data_coding, encode
from .split import PartBody, Plan, frame, plan


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A request's content encoded and cut into chunks, the same for every recipient."""

    rendered: RenderedMessage
    encoding: Encoding
    plan: Plan
    settings: CompositionSettings
    profile: BindProfile
    source: Address
    data_coding: int
    priority_flag: int
    schedule_delivery_time: str
    validity_period: str
    registered_delivery: int


@dataclass(frozen=True, slots=True)
class ComposedMessage:
    """One recipient's message: the submit_sm of every part, to be sent in order."""

    phone: str
    parts: tuple[SubmitSm, ...]
    encoding: Encoding
    # SMS the subscriber receives: len(parts), or more for one message_payload submit.
    segments: int
    # The concatenation reference in the parts (UDH or sar_msg_ref_num), None if none.
    reference: int | None

    @property
    def part_count(self) -> int:
        """How many submit_sm PDUs the message takes."""
        return len(self.parts)


def prepare_message(
    request: SendRequest,
    settings: CompositionSettings,
    profile: BindProfile,
    *,
    priority: bool,
    now: datetime,
) -> PreparedMessage:
    """Validate and encode the request's content; raises :class:`CompositionError`."""
    rendered = render(request)
    if rendered.binary is not None:
        encoded = Encoded(Encoding.BINARY, rendered.binary)
    else:
        chosen = choose_encoding(rendered.text, rendered.encoding, iso=profile.iso)
        encoded = encode(rendered.text, chosen)
    planned = plan(encoded, settings)
    return PreparedMessage(
        rendered=rendered,
        encoding=encoded.encoding,
        plan=planned,
        settings=settings,
        profile=profile,
        source=source_address(request.sender_id or profile.default_source, profile, settings),
        data_coding=data_coding(encoded.encoding, flash=rendered.flash),
        priority_flag=1 if priority else 0,
        schedule_delivery_time=schedule_field(request.schedule_at, now),
        validity_period=validity_field(request.validity_seconds),
        registered_delivery=1 if request.registered_delivery else 0,
    )


def for_recipient(prepared: PreparedMessage, phone: str, *, reference: int) -> ComposedMessage:
    """The parts for ``phone``; ``reference`` is masked to the reference field's width."""
    destination = destination_address(phone, prepared.profile)
    split = frame(prepared.plan, prepared.settings, reference)
    parts = tuple(_submit(prepared, destination, body) for body in split.parts)
    return ComposedMessage(phone, parts, prepared.encoding, split.segments, split.reference)


def _submit(prepared: PreparedMessage, destination: Address, body: PartBody) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=prepared.source.ton,
        source_addr_npi=prepared.source.npi,
        source_addr=prepared.source.addr,
        dest_addr_ton=destination.ton,
        dest_addr_npi=destination.npi,
        destination_addr=destination.addr,
        esm_class=body.esm_class,
        priority_flag=prepared.priority_flag,
        schedule_delivery_time=prepared.schedule_delivery_time,
        validity_period=prepared.validity_period,
        registered_delivery=prepared.registered_delivery,
        data_coding=prepared.data_coding,
        short_message=body.short_message,
        tlvs=body.tlvs,
    )


def compose_message(
    request: SendRequest,
    phone: str,
    settings: CompositionSettings,
    profile: BindProfile,
    *,
    reference: int,
    priority: bool,
    now: datetime,
) -> ComposedMessage:
    """One recipient's submit_sm parts; raises :class:`CompositionError` when impossible."""
    prepared = prepare_message(request, settings, profile, priority=priority, now=now)
    return for_recipient(prepared, phone, reference=reference)


def message_reference(request_id: str, phone: str) -> int:
    """A concatenation reference (0-65535) fixed by the request and the recipient.

    The same message sent again after a crash gets the same reference, so a handset that
    already holds some of its parts joins them instead of mixing two messages.
    """
    digest = hashlib.blake2b(f"{request_id}\x00{phone}".encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big")


def compose_recipients(
    request: SendRequest,
    profile: BindProfile,
    settings: CompositionSettings,
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
    prepared = prepare_message(request, settings, profile, priority=priority, now=now)
    return tuple(
        for_recipient(prepared, phone, reference=reference(request.request_id, phone))
        for phone in request.recipients
    )
