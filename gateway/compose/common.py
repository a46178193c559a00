"""The common send request in one step: one recipient, a text that fits one GSM 7-bit SMS.

Almost every request a sender sees is a plain ``sms`` to one phone, with a text written in
the GSM alphabet that fits one SMS, no provider options and no comment. For such a request
:func:`usual_message` builds the recipient's one SUBMIT_SM directly; for any other, and for
any request it would have to refuse, it gives ``None``, and the general composition
(:func:`~gateway.compose.submit.compose_recipients`) builds or refuses it.
:class:`Composer` tries the one, then the other.

The general path is the truth: on every request :func:`usual_message` accepts it must give
the same :class:`~gateway.compose.submit.ComposedMessage`, equal field for field.
``tests/compose/test_compose_common.py`` holds the two equal over generated requests (texts
around the 160-septet limit, GSM and non-GSM characters, reserved prefixes and comment
markers, senders of every kind, ISO binds, validity and schedule, several recipients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import datetime

from gateway.events.send_request import SendRequest
from gateway.settings.composition import BindProfile, CompositionSettings
from gateway.slots import slot_setters
from gateway.smpp.constants import EsmClass
from gateway.smpp.pdu import SubmitSm
from gateway.smpp.textcoding import gsm7_or_none

from .addressing import Address, source_address, validity_field
from .channels import COMMENT_MARKER, PREFIXES
from .encoding import Encoding, data_coding
from .errors import CompositionError
from .split import CAPACITY
from .submit import ComposedMessage, compose_recipients, message_reference

_SINGLE_GSM7 = CAPACITY[Encoding.GSM7][0]
_RESERVED = tuple(PREFIXES.values())
_GSM7_CODING = data_coding(Encoding.GSM7, flash=False)
# The usual SUBMIT_SM is built by setting its slots in this order (slot_setters): the frozen
# dataclass's __init__, binding 14 keywords and setting 20 fields one by one, was half of
# usual_message's cost (py-spy, bench/send_pipeline.py at window 512). The import fails if
# SubmitSm's fields change; the tests hold the result equal to the general composition's
# SubmitSm(...).
_SUBMIT_SM_FIELDS = (
    "sequence_number",
    "command_status",
    "tlvs",
    "service_type",
    "source_addr_ton",
    "source_addr_npi",
    "source_addr",
    "dest_addr_ton",
    "dest_addr_npi",
    "destination_addr",
    "esm_class",
    "protocol_id",
    "priority_flag",
    "schedule_delivery_time",
    "validity_period",
    "registered_delivery",
    "replace_if_present_flag",
    "data_coding",
    "sm_default_msg_id",
    "short_message",
)
if tuple(f.name for f in fields(SubmitSm)) != _SUBMIT_SM_FIELDS:
    raise ImportError("usual_message no longer sets every field of SubmitSm")
_SUBMIT_SM_SLOTS = slot_setters(SubmitSm, _SUBMIT_SM_FIELDS)
# Senders seen, with their address: a service sends under a handful of names.
_SOURCES_KEPT = 1024


class Composer:
    """Composition bound to the settings and the bind's profile, decided once when the role
    is wired; keeps the addresses of the senders it has seen."""

    def __init__(self, settings: CompositionSettings, profile: BindProfile) -> None:
        self.settings = settings
        self.profile = profile
        self._sources: dict[str, Address] = {}

    def compose(
        self,
        request: SendRequest,
        *,
        priority: bool,
        now: datetime,
        reference: Callable[[str, str], int] = message_reference,
    ) -> tuple[ComposedMessage, ...]:
        """Every recipient's parts, in the order of ``request.recipients``.

        ``reference(request_id, phone)`` gives each recipient's concatenation reference.
        Raises :class:`CompositionError` (nothing is to be sent for the request) when the
        content or any recipient cannot be composed.
        """
        usual = self.usual(request, priority=priority)
        if usual is not None:
            return (usual,)
        return compose_recipients(
            request, self.profile, self.settings, priority=priority, now=now, reference=reference
        )

    def usual(self, request: SendRequest, *, priority: bool) -> ComposedMessage | None:
        """:func:`usual_message` with this composer's settings and its senders' addresses."""
        sender = request.sender_id or self.profile.default_source
        source = self._sources.get(sender)
        if source is None:
            try:
                source = source_address(sender, self.profile, self.settings)
            except CompositionError:
                return None
            if len(self._sources) >= _SOURCES_KEPT:
                self._sources.clear()
            self._sources[sender] = source
        return usual_message(request, self.profile, source, priority=priority)


def usual_message(
    request: SendRequest, profile: BindProfile, source: Address, *, priority: bool
) -> ComposedMessage | None:
    """The one SUBMIT_SM of a usual request (see the module docstring), or ``None``.

    ``source`` is the address of the request's sender (``source_address``).
    """
    if (
        len(request.recipients) != 1
        or request.channel != "sms"
        or request.provider_options
        or request.comment is not None
        or request.schedule_at is not None
        or profile.iso
    ):
        return None
    text = request.text
    # What channels.render refuses, and what an SMS of one part cannot carry.
    if (
        len(text) > _SINGLE_GSM7
        or COMMENT_MARKER in text + "\n"
        or text.lstrip().startswith(_RESERVED)
    ):
        return None
    octets = gsm7_or_none(text)
    (phone,) = request.recipients
    if (
        octets is None
        or len(octets) > _SINGLE_GSM7
        or not (5 <= len(phone) <= 20 and phone.isascii() and phone.isdigit())
    ):
        return None
    try:
        validity = validity_field(request.validity_seconds)
    except CompositionError:
        return None
    pdu = object.__new__(SubmitSm)  # SubmitSm(**fields), see _SUBMIT_SM_FIELDS
    values = (
        0,  # sequence_number: the session numbers it
        0,  # command_status
        (),  # tlvs
        "",  # service_type
        source.ton,
        source.npi,
        source.addr,
        profile.destination_ton,
        profile.destination_npi,
        phone,  # destination_addr
        EsmClass.DEFAULT,
        0,  # protocol_id
        1 if priority else 0,  # priority_flag
        "",  # schedule_delivery_time
        validity,  # validity_period
        1 if request.registered_delivery else 0,
        0,  # replace_if_present_flag
        _GSM7_CODING,
        0,  # sm_default_msg_id
        octets,  # short_message
    )
    for set_slot, value in zip(_SUBMIT_SM_SLOTS, values, strict=True):
        set_slot(pdu, value)
    return ComposedMessage(phone, (pdu,), Encoding.GSM7, 1, None)
