"""``provider_options``: which keys composition knows, which channel takes which, and readers.

Keys are refused when unknown (``unknown_provider_option``) or when they belong to another
channel (``option_not_applicable``), so a typo or a misplaced field never silently changes
what is sent. Values are read by type here; what a valid value is belongs to the channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import CompositionError

ENCODINGS = ("auto", "gsm7", "latin1", "ucs2", "binary")
# Keys each channel takes. hlr and ping send a fixed text, so they take none.
CHANNEL_OPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "sms": frozenset({"encoding"}),
        "flash": frozenset({"encoding"}),
        "viber": frozenset({"encoding"}),
        "social": frozenset({"encoding"}),
        "mail": frozenset({"encoding", "subject"}),
        "call": frozenset({"encoding", "voice", "language", "param"}),
        "telegram_code": frozenset({"code"}),
        "telegram_bot": frozenset({"encoding", "bot"}),
        "hlr": frozenset(),
        "ping": frozenset(),
    }
)
KNOWN_OPTIONS = frozenset().union(*CHANNEL_OPTIONS.values())
# Channels whose messages may be binary octets rather than text.
BINARY_CHANNELS = frozenset({"sms", "flash"})


def check_keys(channel: str, options: Mapping[str, Any]) -> None:
    """Refuse keys composition does not know and keys of another channel."""
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        known = ", ".join(sorted(KNOWN_OPTIONS))
        raise CompositionError(
            "unknown_provider_option",
            f"unknown provider_options {', '.join(unknown)}; known: {known}",
        )
    misplaced = sorted(set(options) - CHANNEL_OPTIONS[channel])
    if misplaced:
        raise CompositionError(
            "option_not_applicable",
            f"provider_options {', '.join(misplaced)} do not apply to channel {channel}",
        )


def optional_text(
    options: Mapping[str, Any], key: str, pattern: re.Pattern[str], code: str
) -> str | None:
    """The string value of ``key`` if present; ``code`` when it is not a matching string."""
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise CompositionError(code, f"provider_options.{key} {str(value)[:40]!r} is not valid")
    return value


def required_text(
    options: Mapping[str, Any], key: str, pattern: re.Pattern[str], code: str, channel: str
) -> str:
    """Like :func:`optional_text`, and ``missing_<key>`` when absent."""
    value = optional_text(options, key, pattern, code)
    if value is None:
        raise CompositionError(f"missing_{key}", f"channel {channel} needs provider_options.{key}")
    return value


def requested_encoding(channel: str, options: Mapping[str, Any]) -> str:
    """The ``encoding`` option: ``auto`` unless one of :data:`ENCODINGS` is asked for."""
    value = options.get("encoding", "auto")
    if value not in ENCODINGS:
        raise CompositionError(
            "invalid_encoding",
            f"provider_options.encoding {str(value)[:20]!r} is not one of {', '.join(ENCODINGS)}",
        )
    if value == "binary" and channel not in BINARY_CHANNELS:
        raise CompositionError(
            "option_not_applicable",
            f"encoding binary applies to {', '.join(sorted(BINARY_CHANNELS))} only",
        )
    return str(value)
