"""``/sys/receive_phones.php``, simulated: dedicated numbers for receiving SMS (seed 000).

- ``get=1``: the numbers free to rent, with ``phone``, ``type``, ``cost`` (a full month),
  ``current_cost`` (the days left of this month) and ``info``.
- ``get=1&my=1``: the numbers the login rents (``phone``, ``type``, ``cost``, ``noprolong``,
  ``info``). The seed documents no command for this list: the parameter and the fields are
  this simulator's, and the gateway's, assumption (docs/account.md).
- ``buy=1&phone=<phone>[&noprolong=1]``: rents a free number, charging ``current_cost``
  (error 3 when the balance does not cover it); answers ``{"cost": "<cost>"}``.
- ``chg=1&phone=<phone>&noprolong=0|1``: whether a rented number is renewed next month;
  answers ``{"result": "OK"}``.

Error 1 for missing or malformed parameters and for a number that is not free to rent (or not
the login's, for ``chg``); error 9 for a third identical request within the minute.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from gateway.settings.simulator_accounts import AccountScriptsSettings, RentableNumber

from .http_api_centre import ApiError
from .http_api_scripts import (
    IdenticalRequests,
    ScriptReply,
    render_fields,
    render_items,
    render_ok,
)

_CENTS = Decimal("0.01")


@dataclass(slots=True)
class RentedNumber:
    number: RentableNumber
    login: str
    noprolong: bool


class ReceivePhonesScript:
    """See the module docstring. ``balances`` is the HTTP API's, shared with send.php."""

    name = "receive_phones"

    def __init__(
        self,
        config: AccountScriptsSettings,
        balances: dict[str, Decimal],
        *,
        window_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._offered = {n.phone: n for n in config.rentable_numbers}
        self._balances = balances
        self._wall_clock = wall_clock
        self._identical = IdenticalRequests(
            config.numbers_identical_per_window, window_seconds, clock
        )
        self.rented: dict[str, RentedNumber] = {}

    def answer(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        if self._identical.refused(login, params):
            return ApiError(9, "duplicate request, wait a minute")
        if params.get("get") == "1":
            mine = params.get("my") == "1"
            return render_items(fmt, self._own(login) if mine else self._free(), "receive_phone")
        if params.get("buy") == "1":
            return self._buy(login, params, fmt)
        if params.get("chg") == "1":
            return self._change(login, params, fmt)
        return ApiError(1)

    def current_cost(self, number: RentableNumber) -> Decimal:
        """The month's cost for the days left of it, today included."""
        today = datetime.fromtimestamp(self._wall_clock(), UTC)
        days = calendar.monthrange(today.year, today.month)[1]
        share = number.cost * (days - today.day + 1) / days
        return share.quantize(_CENTS, ROUND_HALF_UP)

    def _free(self) -> list[dict[str, Any]]:
        return [
            {
                "phone": n.phone,
                "type": n.type,
                "cost": f"{n.cost:.2f}",
                "current_cost": f"{self.current_cost(n):.2f}",
                "info": n.info,
            }
            for phone, n in self._offered.items()
            if phone not in self.rented
        ]

    def _own(self, login: str) -> list[dict[str, Any]]:
        return [
            {
                "phone": r.number.phone,
                "type": r.number.type,
                "cost": f"{r.number.cost:.2f}",
                "noprolong": int(r.noprolong),
                "info": r.number.info,
            }
            for r in self.rented.values()
            if r.login == login
        ]

    def _buy(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        number = self._offered.get(params.get("phone", "").lstrip("+"))
        noprolong = params.get("noprolong", "0")
        if number is None or number.phone in self.rented or noprolong not in {"0", "1"}:
            return ApiError(1)
        cost = self.current_cost(number)
        if self._balances[login] < cost:
            return ApiError(3, "not enough money to rent the number")
        self._balances[login] -= cost
        self.rented[number.phone] = RentedNumber(number, login, noprolong == "1")
        return render_fields(fmt, {"cost": f"{cost:.2f}"}, "phone")

    def _change(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        rented = self.rented.get(params.get("phone", "").lstrip("+"))
        noprolong = params.get("noprolong")
        if rented is None or rented.login != login or noprolong not in {"0", "1"}:
            return ApiError(1)
        rented.noprolong = noprolong == "1"
        return render_ok(fmt)
