"""``smsc-gateway numbers``: the account's dedicated numbers for receiving SMS.

``list`` (the numbers rented), ``available`` (free to rent, with what renting one costs now
and a month), ``buy PHONE`` and ``prolong PHONE on|off``. Buying, and turning renewal on,
spend money: both say how much and ask first, unless ``--yes``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..numbers import RentableNumber, RentedNumber, type_name
from .args import Commands, command, group, phone
from .output import FAILED, show
from .session import Session


def register(commands: Commands) -> None:
    numbers = group(commands, "numbers", "the account's dedicated numbers (receive_phones.php)")
    command(numbers, "list", list_rented, "the dedicated numbers this account rents")
    command(numbers, "available", list_available, "numbers free to rent, with their cost")
    buy = command(numbers, "buy", buy_number, "rent a number (asks first: it costs money)")
    buy.add_argument("phone", type=phone, metavar="PHONE", help="a number from `numbers available`")
    buy.add_argument(
        "--no-prolong", action="store_true", help="do not renew it next month (renewed by default)"
    )
    buy.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    prolong = command(
        numbers, "prolong", prolong_number, "renew a rented number each month, or stop renewing"
    )
    prolong.add_argument("phone", type=phone, metavar="PHONE", help="a number from `numbers list`")
    prolong.add_argument("renewal", choices=("on", "off"), help="on: renew monthly; off: stop")
    prolong.add_argument(
        "-y", "--yes", action="store_true", help="do not ask before turning renewal on"
    )


async def list_rented(session: Session, args: argparse.Namespace) -> int:
    rented = await session.numbers.rented()
    columns = ["phone", "type", "cost_per_month", "renewed", "info"]
    show(
        [_rented(n) for n in rented],
        columns,
        as_json=args.json,
        out=session.console.out,
        empty="no dedicated numbers rented",
    )
    return 0


async def list_available(session: Session, args: argparse.Namespace) -> int:
    offered = await session.numbers.available()
    columns = ["phone", "type", "cost_now", "cost_per_month", "info"]
    show(
        [_offered(n) for n in offered],
        columns,
        as_json=args.json,
        out=session.console.out,
        empty="no numbers free to rent",
    )
    return 0


async def buy_number(session: Session, args: argparse.Namespace) -> int:
    console = session.console
    offered = {n.phone: n for n in await session.numbers.available()}
    number = offered.get(args.phone)
    if number is None:
        console.err.write(
            f"smsc-gateway: {args.phone} is not free to rent (see `numbers available`)\n"
        )
        return FAILED
    renewal = "not renewed" if args.no_prolong else f"then {number.cost} a month, renewed monthly"
    question = f"Rent {number.phone} for {number.current_cost} now ({renewal})?"
    if not console.confirm(question, assume_yes=args.yes):
        console.err.write("smsc-gateway: not rented: not confirmed\n")
        return FAILED
    cost = await session.numbers.buy(number.phone, prolong=not args.no_prolong)
    result = {"phone": number.phone, "cost": cost, "renewed": not args.no_prolong}
    show(result, ["phone", "cost", "renewed"], as_json=args.json, out=console.out)
    return 0


async def prolong_number(session: Session, args: argparse.Namespace) -> int:
    console = session.console
    on = args.renewal == "on"
    if on:
        rented = {n.phone: n for n in await session.numbers.rented()}
        number = rented.get(args.phone)
        cost = (
            f"{number.cost} a month" if number is not None and number.cost else "its monthly rent"
        )
        if not console.confirm(f"Renew {args.phone} every month ({cost})?", assume_yes=args.yes):
            console.err.write("smsc-gateway: renewal not changed: not confirmed\n")
            return FAILED
    await session.numbers.set_prolong(args.phone, on)
    show(
        {"phone": args.phone, "renewed": on},
        ["phone", "renewed"],
        as_json=args.json,
        out=console.out,
    )
    return 0


def _rented(number: RentedNumber) -> dict[str, Any]:
    return {
        "phone": number.phone,
        "type": type_name(number.type),
        "cost_per_month": number.cost,
        "renewed": number.prolong,
        "info": number.info,
    }


def _offered(number: RentableNumber) -> dict[str, Any]:
    return {
        "phone": number.phone,
        "type": type_name(number.type),
        "cost_now": number.current_cost,
        "cost_per_month": number.cost,
        "info": number.info,
    }
