"""Connections per login, as the provider counts them (SMPP seed, "Multiple connections").

One connection per login by default: a new bind of the same system_id kicks the previous one.
``system_type = "MCONn"`` (n from 1 to 9) allows n simultaneous connections, and the bind
after that kicks the oldest. ``system_type`` carries other flags too, comma-separated
("ISO,SINGLE", seed "Sending a message" and "Checking the status"); unknown ones are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_MCON = re.compile(r"MCON([1-9])")


@dataclass(frozen=True, slots=True)
class BindFlags:
    """What a bind's ``system_type`` asked for.

    ``mcon``: simultaneous connections allowed (1 without an MCON flag); ``iso``: 8-bit text
    is ISO-8859-1 instead of GSM; ``single``: one status per SMS part instead of one per
    glued message.
    """

    mcon: int = 1
    iso: bool = False
    single: bool = False

    @classmethod
    def parse(cls, system_type: str) -> BindFlags:
        """Flags from a comma-separated ``system_type`` (case and spaces do not matter)."""
        flags = {part.strip().upper() for part in system_type.split(",")}
        counts = [int(match[1]) for flag in flags if (match := _MCON.fullmatch(flag))]
        return cls(mcon=max(counts, default=1), iso="ISO" in flags, single="SINGLE" in flags)


class Logins(Generic[T]):
    """The bound connections of each system_id, oldest first."""

    def __init__(self) -> None:
        self._bound: dict[str, list[T]] = {}

    def admit(self, system_id: str, connection: T, limit: int) -> list[T]:
        """Count ``connection`` as bound; returns the older ones it pushes over ``limit``,
        oldest first, which no longer count. The newest bind's ``limit`` (its MCONn) decides,
        as the provider reads the flags of each bind."""
        bound = self._bound.setdefault(system_id, [])
        excess = max(0, len(bound) + 1 - limit)
        kicked = bound[:excess]
        del bound[:excess]
        bound.append(connection)
        return kicked

    def release(self, system_id: str, connection: T) -> None:
        """``connection`` is gone (a no-op if it was kicked or never bound)."""
        bound = self._bound.get(system_id, [])
        if connection in bound:
            bound.remove(connection)
        if not bound:
            self._bound.pop(system_id, None)

    def of(self, system_id: str) -> list[T]:
        """The connections counted for ``system_id``, oldest first."""
        return list(self._bound.get(system_id, []))
