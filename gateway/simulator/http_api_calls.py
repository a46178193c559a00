"""Number confirmation by call, simulated: ``wait_call.php`` and the subscriber's call (no I/O).

Webhook seed, "Confirm your phone number with a call": ``wait_call.php?phone=<phone>`` answers
the number the subscriber must call within 15 minutes (``phone``) and every number the
system could have given (``all_phones``, "depending on the country"). Errors: 1 parameters,
2 credentials, 3 not enough money, 4 IP blocked, 5 the phone is on the client's blacklist,
6 the cost cannot be had under the account's settings, 9 more than fifty identical requests
within a minute (concurrency is the server's). After the call "the Server records the fact
of the call in the form of an incoming message with the text "[waitcall] "" and reports it
to the client's handler (``waitcall=1``, ``phone``, ``ts``).

The blacklist is the account's one, kept by phones.php (:mod:`.phones`): the seed's error 5
names no lock type, so an entry of any type (seed 004: all messages, mass mailings, single
messages) refuses the phone here. Where the seed is silent this simulator chooses: the
number given is picked among ``numbers`` by the phone (stable per phone), the service costs
``cost`` per request, and a call is reported only while its number is open
(``window_seconds`` after it was given).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from decimal import Decimal

import orjson

from gateway.settings.simulator_desk import CallDeskSettings

from .http_api_centre import ApiError, RecentEvents
from .http_api_messages import valid_phone

WAITCALL_TEXT = "[waitcall] "


@dataclass(frozen=True, slots=True)
class IssuedNumber:
    """A number given to ``phone`` at Unix time ``issued_at``."""

    login: str
    phone: str
    call_to: str
    all_phones: tuple[str, ...]
    issued_at: float


class CallDesk:
    """Numbers given out per phone and the rules of wait_call.php; ``blacklisted(login,
    phone)`` asks the account's blacklist, the one phones.php keeps."""

    def __init__(
        self,
        config: CallDeskSettings,
        window_seconds: float,
        balances: MutableMapping[str, Decimal],
        blacklisted: Callable[[str, str], bool],
    ) -> None:
        self.config = config
        self._blacklisted = blacklisted
        self.issued: list[IssuedNumber] = []
        self.placed = 0  # calls reported
        self._open: dict[str, IssuedNumber] = {}
        self._balances = balances
        self._requests = RecentEvents(window_seconds)

    def issue(
        self, login: str, params: Mapping[str, str], *, now: float, mono: float
    ) -> IssuedNumber | ApiError:
        """wait_call.php for ``login`` at Unix time ``now`` (``mono`` for the window)."""
        phone = params.get("phone", "").strip().lstrip("+")
        if not valid_phone(phone):
            return ApiError(1)
        if self._requests.add((login, phone), mono) > self.config.identical_per_window:
            return ApiError(9, "duplicate request, wait a minute")
        if self._blacklisted(login, phone):
            return ApiError(5, "phone is in the black list")
        if phone.startswith(self.config.refused_prefixes) and self.config.refused_prefixes:
            return ApiError(6, "cost is not available")
        if self._balances[login] < self.config.cost:
            return ApiError(3)
        self._balances[login] -= self.config.cost
        numbers = self.config.numbers
        call_to = numbers[int(phone) % len(numbers)]
        issued = IssuedNumber(login, phone, call_to, numbers, now)
        self.issued.append(issued)
        self._open[phone] = issued
        return issued

    def call(self, phone: str, *, now: float) -> IssuedNumber | None:
        """The subscriber ``phone`` calls: the number they were given, if it is still open."""
        issued = self._open.get(phone.lstrip("+"))
        if issued is None or now > issued.issued_at + self.config.window_seconds:
            return None
        return issued

    def calls_back(self, phone: str) -> bool:
        """Whether a subscriber given a number calls by themselves (configuration)."""
        config = self.config
        silent = bool(config.silent_prefixes) and phone.startswith(config.silent_prefixes)
        return config.call_after_seconds is not None and not silent


def render_wait_call(fmt: int, issued: IssuedNumber) -> str:
    """The answer in ``fmt`` 0 to 3, as the webhook seed shows (fmt 1: the number to call
    first, then the others)."""
    if fmt == 3:
        return orjson.dumps({"phone": issued.call_to, "all_phones": issued.all_phones}).decode()
    if fmt == 2:
        phones = "".join(f"<phone>{p}</phone>" for p in issued.all_phones)
        return f"<result><phone>{issued.call_to}</phone><all_phones>{phones}</all_phones></result>"
    others = [p for p in issued.all_phones if p != issued.call_to]
    if fmt == 1:
        return ",".join([issued.call_to, *others])
    return f"phone = {issued.call_to}, all_phones = {','.join(issued.all_phones)}"
