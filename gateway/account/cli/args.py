"""Argument parsing shared by the account commands: options every command takes, value types."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TypeAlias

from .session import Handler

_PHONE = re.compile(r"\+?[0-9]{5,20}")

# Subparsers as argparse hands them out (its own type is private, generic only to mypy).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def common() -> argparse.ArgumentParser:
    """``--json`` and ``--verbose``, which every command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parent.add_argument(
        "-v", "--verbose", action="store_true", help="log the HTTP API calls to stderr"
    )
    return parent


def command(
    commands: Commands, name: str, handler: Handler, summary: str
) -> argparse.ArgumentParser:
    """A leaf command running ``handler``; ``summary`` is its help line and description."""
    parser = commands.add_parser(name, help=summary, description=summary, parents=[common()])
    parser.set_defaults(handler=handler)
    return parser


def group(commands: Commands, name: str, summary: str) -> Commands:
    """A command with subcommands of its own (one of them is required)."""
    parser = commands.add_parser(name, help=summary, description=summary)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def phone(value: str) -> str:
    """A phone number, international format, ``+`` optional: given to the provider without it."""
    cleaned = re.sub(r"[\s()-]", "", value)
    if not _PHONE.fullmatch(cleaned):
        raise argparse.ArgumentTypeError(f"{value!r} is not a phone number (digits, + optional)")
    return cleaned.lstrip("+")


def positive(value: str) -> int:
    number = _int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be a whole number above 0")
    return number


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a number of seconds above 0")
    return number


def choice(words: dict[str, int]) -> Callable[[str], int]:
    """A word from ``words`` given as its number."""

    def parse(value: str) -> int:
        if value not in words:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(words)}")
        return words[value]

    return parse


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
