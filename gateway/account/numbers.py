"""Dedicated numbers for receiving SMS: receive_phones.php (seed 000).

- ``get=1``: the numbers free to rent, each with ``phone``, ``type``, ``cost`` (a full month),
  ``current_cost`` (the days left of this month: what renting it now costs) and ``info``
  (operator, notification kinds) [DOC seed 000].
- ``buy=1&phone=<phone>[&noprolong=1]``: rent it; answers the amount debited,
  ``{"cost": "<cost>"}`` [DOC seed 000]. Never sent twice: a lost answer is not resent.
- ``chg=1&phone=<phone>&noprolong=0|1``: renew it next month or not; ``{"result": "OK"}``
  [DOC seed 000].
- ``get=1&my=1``: the numbers the account rents. The provider documents no command for this
  list; the parameter and the fields (``phone``, ``type``, ``cost``, ``noprolong``, ``info``)
  are an assumption (docs/account.md).

Errors: 1 parameters, 2 credentials, 3 not enough money to rent, 4 IP blocked, 9 more than two
identical requests a minute [DOC seed 000].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from .calls import ScriptCaller, as_decimal, as_int, as_text, expect_ok, records, unexpected

SCRIPT = "receive_phones"
# Seed 000: "1,4 - dedicated virtual number, 2 - number on the SIM hosting service".
NUMBER_TYPES: Mapping[int, str] = MappingProxyType({1: "virtual", 2: "SIM hosting", 4: "virtual"})


@dataclass(frozen=True, slots=True)
class RentableNumber:
    phone: str
    type: int
    cost: Decimal
    current_cost: Decimal
    info: str


@dataclass(frozen=True, slots=True)
class RentedNumber:
    phone: str
    type: int
    cost: Decimal | None
    prolong: bool
    info: str


def type_name(number_type: int) -> str:
    return NUMBER_TYPES.get(number_type, f"type {number_type}")


def parse_available(document: Any) -> list[RentableNumber]:
    found = []
    for item in records(SCRIPT, document):
        number_type = as_int(item.get("type"))
        cost, current = as_decimal(item.get("cost")), as_decimal(item.get("current_cost"))
        if not item.get("phone") or number_type is None or cost is None or current is None:
            raise unexpected(SCRIPT, item)
        found.append(
            RentableNumber(
                str(item["phone"]), number_type, cost, current, as_text(item.get("info"))
            )
        )
    return found


def parse_rented(document: Any) -> list[RentedNumber]:
    found = []
    for item in records(SCRIPT, document):
        number_type = as_int(item.get("type"))
        if not item.get("phone") or number_type is None:
            raise unexpected(SCRIPT, item)
        prolong = as_int(item.get("noprolong")) != 1
        cost = as_decimal(item.get("cost"))
        found.append(
            RentedNumber(str(item["phone"]), number_type, cost, prolong, as_text(item.get("info")))
        )
    return found


def parse_purchase(document: Any) -> Decimal:
    cost = as_decimal(document.get("cost")) if isinstance(document, dict) else None
    if cost is None:
        raise unexpected(SCRIPT, document)
    return cost


class NumbersApi:
    """receive_phones.php through ``caller`` (limits and concurrency kept there)."""

    def __init__(self, caller: ScriptCaller) -> None:
        self._caller = caller

    async def available(self) -> list[RentableNumber]:
        return parse_available(await self._caller.call(SCRIPT, {"get": "1"}, resend=True))

    async def rented(self) -> list[RentedNumber]:
        params = {"get": "1", "my": "1"}
        return parse_rented(await self._caller.call(SCRIPT, params, resend=True))

    async def buy(self, phone: str, *, prolong: bool = True) -> Decimal:
        """Rent ``phone``; the amount debited. Spends money: a lost answer is not resent."""
        params = {"buy": "1", "phone": phone, "noprolong": "0" if prolong else "1"}
        return parse_purchase(await self._caller.call(SCRIPT, params, resend=False))

    async def set_prolong(self, phone: str, prolong: bool) -> None:
        params = {"chg": "1", "phone": phone, "noprolong": "0" if prolong else "1"}
        expect_ok(SCRIPT, await self._caller.call(SCRIPT, params, resend=True))
