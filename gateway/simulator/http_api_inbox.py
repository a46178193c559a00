"""Incoming SMS of the simulated account and ``get.php?get_answers=1`` (no I/O).

Seed 001 ("Receiving incoming messages"): the answer lists incoming messages with ``id`` (the
server's, ascending), ``received`` and ``sent`` (``DD.MM.YYYY hh:mm:ss``), ``phone`` (the
subscriber), ``message`` and ``to_phone`` (the account's number); the parameters are ``cnt``
(at most 10000), ``hour`` (at most 168), ``after_id`` (messages after that id, not itself) and
``to_phone``. Errors: 1 parameters, 2 credentials, 4 IP blocked, 9 for more than three
identical requests within a minute (concurrency is the server's). The seed's example "the
first 20 incoming messages with ids larger than 1234567" is read as: ascending ids, the
lowest first.

Where the seed is silent this simulator chooses: ``cnt`` 100 and ``hour`` 24 when not given,
an empty list (``[]`` in fmt 3, nothing in the other formats) when nothing matches, times in
the account's zone (``utc_offset_hours``, Moscow's +3 by default), and the XML of fmt 2
exactly as the seed shows it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

import orjson

from gateway.settings.simulator_desk import MAX_CNT, MAX_HOUR, InboxSettings

from .http_api_centre import ApiError, RecentEvents, fingerprint

_FIELDS = ("id", "received", "phone", "message", "to_phone", "sent")


@dataclass(frozen=True, slots=True)
class SimIncoming:
    """One incoming SMS as the provider stores it; times are Unix seconds."""

    incoming_id: int
    login: str
    phone: str
    message: str
    to_phone: str
    sent: float
    received: float
    sms_id: int | None = None

    def fields(self, zone: timezone) -> dict[str, Any]:
        """The fields of one answer item, as seed 001 lists them."""
        return {
            "id": self.incoming_id,
            "received": _date(self.received, zone),
            "phone": self.phone,
            "message": self.message,
            "to_phone": self.to_phone,
            "sent": _date(self.sent, zone),
        }


class Inbox:
    """Every incoming SMS of every login, in id order, and the get_answers rule."""

    def __init__(self, config: InboxSettings, window_seconds: float) -> None:
        self.config = config
        self.zone = timezone(timedelta(hours=config.utc_offset_hours))
        self._ids = itertools.count(config.id_start)
        self._messages: list[SimIncoming] = []
        self._requests = RecentEvents(window_seconds)

    def __len__(self) -> int:
        return len(self._messages)

    def receive(
        self,
        login: str,
        phone: str,
        message: str,
        to_phone: str,
        *,
        now: float,
        sms_id: int | None = None,
        sent: float | None = None,
    ) -> SimIncoming:
        """A subscriber's SMS reaches the account; it gets the next id."""
        incoming = SimIncoming(
            next(self._ids),
            login,
            phone.lstrip("+"),
            message,
            to_phone.lstrip("+"),
            now if sent is None else sent,
            now,
            sms_id,
        )
        self._messages.append(incoming)
        return incoming

    def answers(
        self, login: str, params: Mapping[str, str], *, now: float, mono: float
    ) -> list[SimIncoming] | ApiError:
        """get.php?get_answers=1 for ``login`` at Unix time ``now`` (``mono`` for the window)."""
        query = self._query(params)
        if isinstance(query, ApiError):
            return query
        if self._requests.add(fingerprint(login, params), mono) > self.config.identical_per_window:
            return ApiError(9, "duplicate request, wait a minute")
        after_id, cnt, hour, to_phone = query
        start = bisect.bisect_right(self._messages, after_id, key=lambda m: m.incoming_id)
        since = now - hour * 3600
        found = (
            m
            for m in itertools.islice(self._messages, start, None)
            if m.login == login and m.received >= since and to_phone in (None, m.to_phone)
        )
        return list(itertools.islice(found, cnt))

    def _query(self, params: Mapping[str, str]) -> tuple[int, int, int, str | None] | ApiError:
        if params.get("get_answers") != "1":
            return ApiError(1)  # other get.php requests are not simulated
        after_id = _number(params.get("after_id"), 0)
        cnt = _number(params.get("cnt"), self.config.default_cnt)
        hour = _number(params.get("hour"), self.config.default_hour)
        if after_id is None or cnt is None or hour is None:
            return ApiError(1)
        if not 1 <= cnt <= MAX_CNT or not 1 <= hour <= MAX_HOUR:
            return ApiError(1)
        to_phone = params.get("to_phone", "").strip().lstrip("+") or None
        return after_id, cnt, hour, to_phone


def render_answers(fmt: int, items: Sequence[SimIncoming], zone: timezone) -> str:
    """The answer in ``fmt`` 0 to 3, shaped as seed 001 shows."""
    rows = [item.fields(zone) for item in items]
    if fmt == 3:
        return orjson.dumps(rows).decode()
    if fmt == 2:
        elements = "".join(
            "<sms>" + "".join(f"<{k}>{escape(str(row[k]))}</{k}>" for k in _FIELDS) + "</sms>"
            for row in rows
        )
        return f"<sms_answers>{elements}</sms_answers>"
    if fmt == 1:
        order = ("id", "received", "phone", "to_phone", "sent", "message")
        return "\n".join(",".join(str(row[k]) for k in order) for row in rows)
    return "\n".join(", ".join(f"{k} = {row[k]}" for k in _FIELDS) for row in rows)


def _number(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _date(moment: float, zone: timezone) -> str:
    return datetime.fromtimestamp(moment, UTC).astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")
