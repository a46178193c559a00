"""JSON-lines logging, configured once by the composition root.

No setting may put a secret in a log line. Two defences:

* the HTTP client libraries (httpx, httpcore) log every request's address at INFO and their
  exchanges at DEBUG; a GET to the provider's API carries ``psw=`` or ``apikey=`` in its
  address, so those loggers are kept at WARNING whatever the level;
* every secret setting's value (:func:`secret_values`) is replaced by ``***`` in every line
  written, as it is, URL-encoded and JSON-escaped, whoever logged it.

Warnings and errors are summarised when they repeat: of each kind (logger, level and message
template) at most :data:`BURST` records are written per :data:`PERIOD_SECONDS`; the rest are
counted, and when the period ends one line says how many were left out. A Kafka outage makes
aiokafka log every reconnect attempt and every failed metadata request at ERROR, thousands a
second while a partition has no leader; with the summary a 40 s outage stays a few hundred
lines, the first occurrence of each kind intact.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
# At most this many records of one kind per period are written...
BURST = 5
# ...per this many seconds; then a line with the count of the ones left out.
PERIOD_SECONDS = 10.0
# Kinds remembered at most (message templates are few; this bounds a pathological logger).
_MAX_KINDS = 1000


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


@dataclass(slots=True)
class _Kind:
    """One kind of record within its current period."""

    started: float
    written: int = 0
    left_out: int = 0
    level: int = logging.WARNING
    template: str = ""


class RepeatSummarizer(logging.Handler):
    """Passes records to ``target``, summarising repeated warnings and errors (see the
    module docstring); records below WARNING pass as they are."""

    def __init__(
        self,
        target: logging.Handler,
        *,
        burst: int = BURST,
        period_seconds: float = PERIOD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._target = target
        self._burst = burst
        self._period = period_seconds
        self._clock = clock
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._next_sweep = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            self._target.handle(record)
            return
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        key = (record.name, record.levelno, str(record.msg))
        kind = self._kinds.get(key)
        if kind is None or now - kind.started >= self._period:
            if kind is not None:
                self._summarise(key, kind, now)
            if len(self._kinds) >= _MAX_KINDS:
                self._sweep(now + self._period)  # every kind's period counts as ended
            kind = self._kinds[key] = _Kind(now, level=record.levelno, template=key[2])
        if kind.written < self._burst:
            kind.written += 1
            self._target.handle(record)
        else:
            kind.left_out += 1

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        self._sweep(float("inf"))
        self._target.close()
        super().close()

    def _sweep(self, now: float) -> None:
        """Summarise and forget every kind whose period ended."""
        ended = [key for key, kind in self._kinds.items() if now - kind.started >= self._period]
        for key in ended:
            self._summarise(key, self._kinds.pop(key), now)
        self._next_sweep = now + 1.0

    def _summarise(self, key: tuple[str, int, str], kind: _Kind, now: float) -> None:
        if not kind.left_out:
            return
        seconds = min(now, kind.started + self._period) - kind.started
        summary = logging.LogRecord(
            key[0],
            kind.level,
            __file__,
            0,
            "%d more like this left out in %.0f s: %s",
            (kind.left_out, seconds, kind.template),
            None,
        )
        summary.left_out = kind.left_out
        self._target.handle(summary)


def configure_logging(level: str, stream: TextIO = sys.stderr, secrets: Iterable[str] = ()) -> None:
    """Send every log record to ``stream`` as JSON lines at ``level`` and above, with
    ``secrets`` masked and repeated warnings and errors summarised."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [RepeatSummarizer(handler)]
    root.setLevel(level.upper())
    quiet = max(root.level, logging.WARNING)
    # aiokafka's INFO lines are per connection and per rebalance step; its warnings and
    # errors (reconnects, failed requests) are kept, summarised when they repeat.
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
