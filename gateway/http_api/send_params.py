"""A send request as send.php parameters, composed as over SMPP where the two meet.

The content comes from :func:`gateway.compose.render` (the same validation as SMPP: channel
fields, comment, reserved prefixes); this module turns it into send.php's parameters
(reference 1.1):

- channel: ``flash=1``, ``viber=1``, ``soc=1``, ``mail=1`` (+ ``subj``), ``call=1`` (+ ``voice``,
  ``param``), ``hlr=1``, ``ping=1``; Telegram as ``tgm=1`` and ``bot=@name`` (the parameter
  names are [MEM] in the reference); binary octets as ``bin=2`` with hex in ``mes``;
- comment: after ``\\n~~~\\n`` in ``mes`` (for a call, the marker carries its parameters, which
  send.php takes as ``param`` instead);
- sender id: ``sender`` (the request's, else the configured default, else the account's);
- validity: ``valid=hh:mm``, at most 24:00 over HTTP;
- schedule: ``time=0<unix time>``, only when in the future;
- ``id``: our own message id, derived from the request id (:func:`client_message_id`), so
  status.php can be asked about the request whatever happened to send.php's answer.

``encoding`` hints have no HTTP equivalent (the provider encodes by content) and are ignored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from gateway.compose import COMMENT_MARKER, CompositionError, RenderedMessage, render
from gateway.events.send_request import SendRequest
from gateway.settings.http_api import HttpApiSettings

# Client message ids are "32-bit numbers in the range 1..2147483647" (official libraries).
MAX_CLIENT_ID = 2_147_483_647
# send.php's valid: "hh:mm or hours, 1..24".
MAX_VALIDITY_MINUTES = 24 * 60
CHANNEL_FLAGS: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "sms": (),
        "flash": (("flash", "1"),),
        "viber": (("viber", "1"),),
        "social": (("soc", "1"),),
        "mail": (("mail", "1"),),
        "call": (("call", "1"),),
        "hlr": (("hlr", "1"),),
        "ping": (("ping", "1"),),
        "telegram_code": (("tgm", "1"),),
        "telegram_bot": (),
    }
)
# Channel fields validated by composition and the send.php parameter each one goes to.
FIELD_PARAMS: Mapping[str, str] = MappingProxyType(
    {"subject": "subj", "voice": "voice", "param": "param", "bot": "bot"}
)


def client_message_id(request_id: str, generation: int = 0) -> int:
    """Our ``id`` for a request, 1..2147483647, the same in every process and after restarts.

    ``generation`` moves to a new id when the provider refused the request after assigning
    the old one (error 3), so a later send is not confused with the refused message.
    """
    digest = hashlib.blake2b(f"{request_id}\x1f{generation}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % MAX_CLIENT_ID + 1


def send_params(
    request: SendRequest, settings: HttpApiSettings, *, now: datetime, generation: int = 0
) -> dict[str, str]:
    """send.php's parameters (without credentials, fmt, charset, cost); raises
    :class:`~gateway.compose.CompositionError` when the request cannot go over HTTP."""
    rendered = render(request)
    params = {
        "id": str(client_message_id(request.request_id, generation)),
        "phones": ",".join(request.recipients),
        "mes": message_text(rendered, settings.max_text_chars),
        **dict(CHANNEL_FLAGS[rendered.channel]),
        **{FIELD_PARAMS[k]: v for k, v in rendered.fields.items() if k in FIELD_PARAMS},
    }
    if rendered.binary is not None:
        params["bin"] = "2"
    sender = request.sender_id or settings.sender_id
    if sender:
        params["sender"] = sender
    if request.validity_seconds is not None:
        params["valid"] = validity(request.validity_seconds)
    if request.schedule_at is not None and request.schedule_at > now:
        params["time"] = f"0{int(request.schedule_at.timestamp())}"
    return params


def message_text(rendered: RenderedMessage, max_chars: int) -> str:
    """``mes``: what the subscriber gets, then the comment after the provider's marker."""
    text = rendered.body
    if rendered.comment is not None and rendered.channel != "call":
        text = with_comment(text, rendered.comment)
    if len(text) > max_chars:
        raise CompositionError(
            "text_too_long", f"send.php takes at most {max_chars} characters ({len(text)})"
        )
    return text


def with_comment(text: str, comment: str) -> str:
    """The text with a comment only the provider's history shows (the seeds' ``\\n~~~\\n``)."""
    return text + COMMENT_MARKER + comment


def validity(seconds: int) -> str:
    """``valid`` as ``hh:mm``, rounded up to the minute; over 24 hours is refused."""
    minutes = math.ceil(seconds / 60)
    if minutes > MAX_VALIDITY_MINUTES:
        raise CompositionError(
            "validity_too_long", "send.php keeps a message at most 24 hours (valid=24:00)"
        )
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}"
