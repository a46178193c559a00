"""The simulator's HTTP API logic without sockets: who is let in, what each script answers.

Every rule answers as the provider does (reference/smsc-http-api.md): ``error_code`` 1 for
missing or malformed parameters, 2 for wrong credentials (5 of them from one IP within the
window block it: 4), 3 when the balance does not cover the cost, 5 for a malformed ``time``,
6 for a denied text or an unregistered sender, 7 / 8 when no phone is valid / deliverable, 9
for an identical send within the window, too many status queries of one message, a second
multi-id query or an eleventh balance query within the window (concurrency is the server's:
it counts requests in flight). Results are plain values; :mod:`.http_api_formats` renders them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from gateway.settings.simulator_http_api import HttpApiSimulatorSettings, StatusOutcome

from .http_api_messages import NOT_FOUND, SimMessage, parts_of, split_phones, valid_phone

DESCRIPTIONS: Mapping[int, str] = MappingProxyType(
    {
        1: "parameters error",
        2: "authorise error",
        3: "no money",
        4: "ip is blocked",
        5: "invalid time format",
        6: "message is denied",
        7: "invalid number",
        8: "can't to deliver",
        9: "duplicate request, wait a minute",
    }
)
# Final statuses of messages refused after an id was assigned (errors 3, 6, 7, 8).
_REFUSED_STATUS: Mapping[int, int] = MappingProxyType({3: 24, 6: 23, 7: 22, 8: 20})
_TIME = re.compile(r"\d{10}|\d{1,2}-\d{1,2}|0\d+|\+\d+|\d{2}\.\d{2}\.\d{2} \d{2}:\d{2}")
_VALID = re.compile(r"(\d{1,2}):(\d{2})|(\d{1,2})")
# Parameters that make a send something other than a text (reference 1.1).
_NO_TEXT_FLAGS = ("hlr", "ping")
_SECRET_PARAMS = frozenset({"psw", "apikey"})
# Keys of per-window counters are swept of stale ones past this many.
_SWEEP_ABOVE = 10000


@dataclass(frozen=True, slots=True)
class ApiError:
    code: int
    description: str = ""
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendAccepted:
    message_id: int
    count: int
    cost: Decimal
    balance: Decimal
    messages: tuple[SimMessage, ...] = ()


@dataclass(slots=True)
class HttpApiStats:
    """What the HTTP API did; ``errors`` by (script, code)."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    sends_accepted: int = 0
    messages: int = 0
    peak_in_flight: Counter[str] = field(default_factory=Counter)
    callbacks: int = 0


class RecentEvents:
    """Events per key in the last ``window`` seconds (refused ones count too)."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._events: dict[Hashable, deque[float]] = {}

    def add(self, key: Hashable, now: float) -> int:
        """Record an event of ``key``; returns how many there are in the window now."""
        if len(self._events) > _SWEEP_ABOVE:
            self._sweep(now)
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self._window:
            events.popleft()
        events.append(now)
        return len(events)

    def _sweep(self, now: float) -> None:
        horizon = now - self._window
        self._events = {k: v for k, v in self._events.items() if v and v[-1] > horizon}


class HttpApiCentre:
    """See the module docstring. ``clock`` is monotonic (windows), ``wall_clock`` Unix time."""

    def __init__(
        self,
        config: HttpApiSimulatorSettings,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.stats = HttpApiStats()
        self.messages: dict[tuple[int, str], SimMessage] = {}
        self.balances = dict.fromkeys(config.accounts, config.balance)
        self._clock = clock
        self._wall_clock = wall_clock
        self._ids = itertools.count(config.message_id_start)
        self._rng = random.Random(config.seed)
        self._sends: OrderedDict[bytes, float] = OrderedDict()
        self._auth_failures = RecentEvents(config.auth_failure_window_seconds)
        self._blocked_until: dict[str, float] = {}
        self._status_queries = RecentEvents(config.window_seconds)
        self._balance_queries = RecentEvents(config.window_seconds)

    def authenticate(self, params: Mapping[str, str], ip: str) -> str | ApiError:
        """The login of the request, or error 2 (wrong credentials) or 4 (IP blocked)."""
        now = self._clock()
        if self._blocked_until.get(ip, float("-inf")) > now:
            return ApiError(4)
        login = self._login(params)
        if login is not None:
            return login
        if self._auth_failures.add(ip, now) >= self.config.auth_failures_to_block:
            self._blocked_until[ip] = now + self.config.block_seconds
        return ApiError(2)

    def claim_send(self, login: str, params: Mapping[str, str]) -> ApiError | None:
        """Judge a send on arrival: parameters present, and not identical to one within the
        window (the request counts from when it arrives, answered or not)."""
        no_text = any(params.get(flag) == "1" for flag in _NO_TEXT_FLAGS)
        if not params.get("phones") or ("mes" not in params and not no_text):
            return ApiError(1)
        now = self._clock()
        while self._sends and next(iter(self._sends.values())) <= now - self.config.window_seconds:
            self._sends.popitem(last=False)
        key = fingerprint(login, params)
        if key in self._sends:
            return ApiError(9)
        self._sends[key] = now
        return None

    def send(self, login: str, params: Mapping[str, str]) -> SendAccepted | ApiError:
        """send.php once its claim passed."""
        problem = self._send_problem(params)
        if problem is not None:
            return problem
        message_id = _int(params.get("id")) or next(self._ids)
        text = params.get("mes", "")
        phones = split_phones(params["phones"])
        refusal = self._refusal(params, text, phones)
        if refusal is not None:
            self._store(login, params, message_id, phones, refusal)
            return ApiError(refusal, message_id=message_id)
        return self._accept(login, params, message_id, phones)

    def status(
        self, login: str, params: Mapping[str, str]
    ) -> list[dict[str, Any]] | dict[str, Any] | ApiError:
        """status.php: one message, or several (``id`` and ``phone`` lists in step)."""
        ids, phones = _list(params.get("id", "")), _list(params.get("phone", ""))
        if not ids or len(ids) != len(phones) or not all(i.isdigit() for i in ids):
            return ApiError(1)
        multi = "," in params.get("id", "")
        now = self._clock()
        key: Hashable = (login, "multi") if multi else (login, ids[0], phones[0])
        limit = self.config.multi_status_per_window if multi else self.config.status_per_message
        if self._status_queries.add(key, now) > limit:
            return ApiError(9)
        if params.get("del") == "1":
            return self._delete(login, int(ids[0]), phones[0].lstrip("+"))
        detail = _int(params.get("all")) or 0
        items = [
            self._status_item(login, int(i), p.lstrip("+"), detail, multi)
            for i, p in zip(ids, phones, strict=True)
        ]
        return items if multi else items[0]

    def balance(self, login: str) -> Decimal | ApiError:
        """balance.php: error 9 above the window's limit."""
        if self._balance_queries.add(login, self._clock()) > self.config.balance_per_window:
            return ApiError(9)
        return self.balances[login]

    def _login(self, params: Mapping[str, str]) -> str | None:
        if params.get("apikey"):
            return self.config.apikeys.get(params["apikey"])
        login, given = params.get("login", ""), params.get("psw", "")
        expected = self.config.accounts.get(login)
        if expected is None or not given:
            return None
        # The password, or (older docs) the lower-case MD5 of it.
        digest = hashlib.md5(expected.encode(), usedforsecurity=False).hexdigest()
        matches = hmac.compare_digest(given.encode(), expected.encode())
        return login if matches or hmac.compare_digest(given.encode(), digest.encode()) else None

    def _send_problem(self, params: Mapping[str, str]) -> ApiError | None:
        if "time" in params and not _TIME.fullmatch(params["time"]):
            return ApiError(5)
        valid = params.get("valid")
        if valid is not None and not _valid_minutes(valid):
            return ApiError(1)
        if len(params.get("mes", "")) > self.config.max_text_chars or not params.get("phones"):
            return ApiError(1)
        message_id = params.get("id")
        if message_id is not None and not 0 < (_int(message_id) or 0) <= 2_147_483_647:
            return ApiError(1)
        return None

    def _refusal(self, params: Mapping[str, str], text: str, phones: list[str]) -> int | None:
        """The error of a send refused after its id was assigned, if it is."""
        sender = params.get("sender", "")
        senders = self.config.senders
        if any(word in text.lower() for word in self.config.denied_words) or (
            senders and sender and sender not in senders
        ):
            return 6
        if not any(valid_phone(p) for p in phones):
            return 7
        if all(self._undeliverable(p) for p in phones if valid_phone(p)):
            return 8
        return None

    def _accept(
        self, login: str, params: Mapping[str, str], message_id: int, phones: list[str]
    ) -> SendAccepted | ApiError:
        text = params.get("mes", "")
        deliverable = [p for p in phones if valid_phone(p) and not self._undeliverable(p)]
        count = parts_of(text) * len(deliverable)
        cost = count * self.config.sms_cost
        if params.get("cost") == "1":  # the cost only, nothing sent
            return SendAccepted(0, count, cost, self.balances[login])
        if self.balances[login] < cost:
            self._store(login, params, message_id, phones, 3)
            return ApiError(3, message_id=message_id)
        self.balances[login] -= cost
        stored = self._store(login, params, message_id, phones, None)
        self.stats.sends_accepted += 1
        return SendAccepted(message_id, count, cost, self.balances[login], stored)

    def _store(
        self,
        login: str,
        params: Mapping[str, str],
        message_id: int,
        phones: list[str],
        refusal: int | None,
    ) -> tuple[SimMessage, ...]:
        now = self._wall_clock()
        text = params.get("mes", "")
        stored = []
        for phone in phones:
            outcome = self._outcome_of(phone, refusal)
            delay = 0.0 if refusal is not None else self.config.status_delay_seconds
            message = SimMessage(
                message_id,
                phone,
                login,
                text,
                params.get("sender", ""),
                parts_of(text),
                parts_of(text) * self.config.sms_cost,
                now,
                now + delay,
                outcome,
            )
            self.messages[(message_id, phone)] = message
            stored.append(message)
        self.stats.messages += len(stored)
        return tuple(stored)

    def _outcome_of(self, phone: str, refusal: int | None) -> StatusOutcome:
        if refusal is not None:
            return StatusOutcome(_REFUSED_STATUS[refusal], 0)
        if not valid_phone(phone):
            return StatusOutcome(22, 249)
        if self._undeliverable(phone):
            return StatusOutcome(20, 1)
        outcomes = self.config.outcomes
        return self._rng.choices(outcomes, weights=[o.weight for o in outcomes])[0]

    def _undeliverable(self, phone: str) -> bool:
        return phone.startswith(self.config.undeliverable_prefixes)

    def _status_item(
        self, login: str, message_id: int, phone: str, detail: int, multi: bool
    ) -> dict[str, Any]:
        message = self.messages.get((message_id, phone))
        if message is None or message.login != login:
            item: dict[str, Any] = {"status": NOT_FOUND}
        else:
            item = message.fields(self._wall_clock(), detail)
        if multi:
            item |= {"id": message_id, "phone": phone}
        return item

    def _delete(self, login: str, message_id: int, phone: str) -> dict[str, Any] | ApiError:
        message = self.messages.get((message_id, phone))
        if message is None or message.login != login:
            return ApiError(5)
        del self.messages[(message_id, phone)]
        return {"result": "OK"}


def fingerprint(login: str, params: Mapping[str, str]) -> bytes:
    """An identical request: same login and the same parameters, credentials aside."""
    items = sorted((k, v) for k, v in params.items() if k not in _SECRET_PARAMS)
    text = "\x1f".join(f"{k}={v}" for k, v in [("login", login), *items])
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _valid_minutes(value: str) -> bool:
    match = _VALID.fullmatch(value)
    if match is None:
        return False
    hours, minutes, only_hours = match.groups()
    total = int(only_hours) * 60 if only_hours else int(hours) * 60 + int(minutes)
    return 0 < total <= 24 * 60


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
