"""Message composition: a send request as the provider expects it, without any I/O.

- :mod:`.channels`: the channel's text (prefixes, fields, comment), transport-independent;
- :mod:`.encoding`: GSM 7-bit, Latin-1, UCS2 or binary, as indivisible units;
- :mod:`.split`: long messages as UDH parts, SAR parts or one message_payload;
- :mod:`.addressing`: TON/NPI of senders and destinations, SMPP times;
- :mod:`.submit`: the submit_sm PDUs of each recipient.

See ``docs/composition.md``.
"""

from gateway.settings.composition import BindProfile, CompositionSettings, bind_flags

from .channels import COMMENT_MARKER, RenderedMessage, render
from .encoding import Encoding
from .errors import CompositionError
from .submit import (
    ComposedMessage,
    PreparedMessage,
    compose_message,
    compose_recipients,
    for_recipient,
    message_reference,
    prepare_message,
)

__all__ = [
    "COMMENT_MARKER",
    "BindProfile",
    "ComposedMessage",
    "CompositionError",
    "CompositionSettings",
    "Encoding",
    "PreparedMessage",
    "RenderedMessage",
    "bind_flags",
    "compose_message",
    "compose_recipients",
    "for_recipient",
    "message_reference",
    "prepare_message",
    "render",
]
