"""JSON-lines logging, configured once by the composition root.

No setting may put a secret in a log line. Two defences:

* the HTTP client libraries (httpx, httpcore) log every request's address at INFO and their
  exchanges at DEBUG; a GET to the provider's API carries ``psw=`` or ``apikey=`` in its
  address, so those loggers are kept at WARNING whatever the level;
* every secret setting's value (:func:`secret_values`) is replaced by ``***`` in every line
  written, as it is, URL-encoded and JSON-escaped, whoever logged it.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

import orjson

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Loggers that write request addresses (query strings included) below WARNING.
_ADDRESS_LOGGERS = ("httpx", "httpcore")
# Shorter values are not searched for: they would mask ordinary text.
_MIN_SECRET_CHARS = 4
REDACTED = "***"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields;
    ``secrets`` never appear in a line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._masks = _masks(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        for mask in self._masks:
            if mask in line:
                line = line.replace(mask, REDACTED)
        return line


def configure_logging(level: str, stream: TextIO = sys.stderr, secrets: Iterable[str] = ()) -> None:
    """Send every log record to ``stream`` as JSON lines at ``level`` and above, with
    ``secrets`` masked."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = max(root.level, logging.WARNING)
    # aiokafka logs every reconnect attempt at ERROR; the gateway reports those itself.
    logging.getLogger("aiokafka").setLevel(quiet)
    for name in _ADDRESS_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


def secret_values(settings: object) -> list[str]:
    """The values of every secret setting (a field kept out of ``repr``) of ``settings``'
    sections, unless left at its public default: passwords, API keys, signing secrets, path
    tokens, simulator accounts."""
    found: list[str] = []
    for section in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for item in dataclasses.fields(value):
            given = getattr(value, item.name)
            if item.repr is False and given != _default(item):
                found += _strings(given)
    return found


def _default(item: dataclasses.Field[Any]) -> object:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, str)]
    return []


def _masks(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may appear in a line: as is, URL-encoded, JSON-escaped; longest
    first, so a secret containing another is masked whole."""
    masks: set[str] = set()
    for secret in secrets:
        if len(secret) < _MIN_SECRET_CHARS:
            continue
        masks |= {secret, quote(secret, safe=""), quote_plus(secret)}
        masks.add(orjson.dumps(secret).decode()[1:-1])
    return sorted(masks, key=len, reverse=True)


def mask_phone(phone: str) -> str:
    """A phone number safe for logs at INFO and above: country prefix and last two digits."""
    if len(phone) <= 4:
        return "*" * len(phone)
    return f"{phone[:2]}{'*' * (len(phone) - 4)}{phone[-2:]}"
