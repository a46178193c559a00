"""A send request's content the way the provider reads it, whatever the transport.

Over SMPP the special kinds are text prefixes (SMPP seed, "Sending a message"):
``__MAIL__: <text>\\nsubj:<subject>``, ``__CALL__: <text>\\nvoice:<voice>``,
``__VIBER__: <text>``, ``__SOC__: <text>``, ``__TGM__: <code>``,
``__BOT__: <text>\\nbot:@<name>``, and the bare texts ``__HLR__`` and ``__PING__``. Anything
after ``\\n~~~\\n`` is a comment the subscriber never sees (for calls: the call parameters).

:func:`render` builds that text from the request's structured fields and validates them;
it knows nothing of PDUs, so the HTTP transport can use the same result (``body``,
``fields``, ``comment``) to set its own flags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.events.send_request import SendRequest

from .errors import CompositionError
from .options import CHANNEL_OPTIONS, check_keys, optional_text, requested_encoding, required_text

COMMENT_MARKER = "\n~~~\n"
PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "viber": "__VIBER__",
        "social": "__SOC__",
        "mail": "__MAIL__",
        "call": "__CALL__",
        "telegram_code": "__TGM__",
        "telegram_bot": "__BOT__",
        "hlr": "__HLR__",
        "ping": "__PING__",
    }
)
# hlr and ping are the prefix alone; the request's text is not sent.
BARE = frozenset({"hlr", "ping"})
# What follows the marker is the call's parameters on a call, and nothing may follow it on
# hlr and ping, whose text must be exactly the prefix.
NO_COMMENT = frozenset({"call", "hlr", "ping"})

_SUBJECT = re.compile(r"[^\r\n]{1,255}")
_VOICE = re.compile(r"(?:m|w)[2-4]?(?:,[a-z]{2})?")
_LANGUAGE = re.compile(r"[a-z]{2}")
_CALL_PARAM = re.compile(r"[0-9]{1,5}(?:,[0-9]{1,5}){0,2}")
# Telegram bot usernames: 5-32 characters of Latin letters, digits and underscores, starting
# with a letter and ending in "bot" (Telegram's BotFather rules); "@" is optional here.
_BOT = re.compile(r"@?([A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt])")
_TELEGRAM_CODE = re.compile(r"[0-9]{4,8}")  # the seed: numeric codes of 4 to 8 digits only


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """The request's content: what the subscriber gets, and the full text the provider reads."""

    channel: str
    # The full text of a SUBMIT_SM: prefix, body, suffix lines, marker and comment. Empty
    # for a binary message, whose octets are in ``binary``.
    text: str
    # What the subscriber receives: the request's text, the Telegram code, or "" (hlr, ping).
    body: str
    # What follows the marker: the comment, or a call's parameters.
    comment: str | None
    # "auto", or the encoding the request asked for (see gateway.compose.options.ENCODINGS).
    encoding: str = "auto"
    binary: bytes | None = None
    flash: bool = False
    # The channel's validated fields: subject, voice, bot (with "@"), code, param.
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def render(request: SendRequest) -> RenderedMessage:
    """The request's content for the provider; raises :class:`CompositionError` if invalid."""
    channel = request.channel
    if channel not in CHANNEL_OPTIONS:
        raise CompositionError("unsupported_channel", f"channel {channel} is not supported")
    options = request.provider_options
    check_keys(channel, options)
    encoding = requested_encoding(channel, options)
    if encoding == "binary":
        return _binary(request)
    fields = _fields(channel, request, options)
    body = fields.get("code", "") if channel == "telegram_code" else request.text
    head = _head(channel, body, fields)
    comment = fields.get("param") if channel == "call" else request.comment
    if request.comment is not None and channel in NO_COMMENT:
        raise CompositionError("comment_not_allowed", f"channel {channel} takes no comment")
    _check_head(channel, head, body)
    text = head if comment is None else head + COMMENT_MARKER + comment
    return RenderedMessage(
        channel=channel,
        text=text,
        body="" if channel in BARE else body,
        comment=comment,
        encoding=encoding,
        flash=channel == "flash",
        fields=MappingProxyType(fields),
    )


def _binary(request: SendRequest) -> RenderedMessage:
    # The text is the octets in hex, as the HTTP API's bin=2 takes them.
    try:
        octets = bytes.fromhex(request.text)
    except ValueError:
        octets = b""
    if not octets:
        raise CompositionError("invalid_binary", "a binary message's text must be hex octets")
    if request.comment is not None:
        raise CompositionError("comment_not_allowed", "a binary message takes no comment")
    return RenderedMessage(
        channel=request.channel,
        text="",
        body=request.text,
        comment=None,
        encoding="binary",
        binary=octets,
        flash=request.channel == "flash",
    )


def _fields(channel: str, request: SendRequest, options: Mapping[str, Any]) -> dict[str, str]:
    if channel == "mail":
        return {"subject": required_text(options, "subject", _SUBJECT, "invalid_subject", channel)}
    if channel == "call":
        return _call_fields(options)
    if channel == "telegram_bot":
        bot = required_text(options, "bot", _BOT, "invalid_bot", channel)
        return {"bot": "@" + bot.removeprefix("@")}
    if channel == "telegram_code":
        return {"code": _telegram_code(request.text, options)}
    return {}


def _call_fields(options: Mapping[str, Any]) -> dict[str, str]:
    voice = optional_text(options, "voice", _VOICE, "invalid_voice")
    language = optional_text(options, "language", _LANGUAGE, "invalid_language")
    param = optional_text(options, "param", _CALL_PARAM, "invalid_call_param")
    fields: dict[str, str] = {}
    if language is not None:
        if voice is not None and "," in voice:
            raise CompositionError(
                "invalid_voice", "give the language in voice ('w,fr') or in language, not both"
            )
        voice = f"{voice or 'm3'},{language}"  # m3 is the provider's default voice
    if voice is not None:
        fields["voice"] = voice
    if param is not None:
        fields["param"] = param
    return fields


def _telegram_code(text: str, options: Mapping[str, Any]) -> str:
    given = options.get("code")
    code = text.strip() if given is None else given
    if not isinstance(code, str) or not _TELEGRAM_CODE.fullmatch(code):
        raise CompositionError(
            "invalid_telegram_code", "a Telegram code is a string of 4 to 8 digits"
        )
    if given is not None and text.strip() not in {code, ""}:
        raise CompositionError(
            "conflicting_telegram_code", "provider_options.code and the text differ"
        )
    return code


def _head(channel: str, body: str, fields: Mapping[str, str]) -> str:
    """The text before the marker: prefix, body and the channel's suffix line."""
    prefix = PREFIXES.get(channel)
    if prefix is None:
        return body
    if channel in BARE:
        return prefix
    head = f"{prefix}: {body}"
    if channel == "mail":
        head += "\nsubj:" + fields["subject"]
    elif channel == "call" and "voice" in fields:
        head += "\nvoice:" + fields["voice"]
    elif channel == "telegram_bot":
        head += "\nbot:" + fields["bot"]
    return head


_SUFFIX_KEYS = MappingProxyType({"mail": "\nsubj:", "call": "\nvoice:", "telegram_bot": "\nbot:"})


def _check_head(channel: str, head: str, body: str) -> None:
    # A marker inside the text would hide the rest of it from the subscriber; a text that
    # ends in "\n~~~" would form one with the marker that follows.
    if COMMENT_MARKER in head + "\n":
        raise CompositionError(
            "text_contains_comment_marker",
            "the text contains the provider's comment marker \\n~~~\\n",
        )
    if channel in {"sms", "flash"} and body.lstrip().startswith(tuple(PREFIXES.values())):
        raise CompositionError(
            "reserved_prefix",
            "the text starts with a prefix the provider reads as another kind of message",
        )
    suffix = _SUFFIX_KEYS.get(channel)
    if suffix is not None and suffix in body:
        raise CompositionError(
            "reserved_line",
            f"the text has a line starting {suffix.strip()!r}, which the "
            f"provider reads as a field of the {channel} message",
        )
