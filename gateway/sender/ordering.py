"""Requests with the same Kafka key reach the provider in the order they were consumed.

Records of one partition are processed concurrently, so a record that is throttled and sent
again could otherwise be overtaken by a later record with the same key (the same phone,
usually). Each record waits for the previous record with its key to finish submitting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

Turn = asyncio.Future[None]


class KeyOrder:
    """One chain of submissions per key; records without a key are not ordered."""

    def __init__(self) -> None:
        self._tails: dict[Hashable, Turn] = {}

    def enter(
        self, key: Hashable | None
    ) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the previous record's turn to await, or None; this record's turn)."""
        turn: Turn = asyncio.get_running_loop().create_future()
        if key is None:
            return None, turn
        previous = self._tails.get(key)
        self._tails[key] = turn
        return previous, turn

    def leave(self, key: Hashable | None, turn: Turn) -> None:
        """This record is done submitting; the next one with its key may go."""
        if not turn.done():
            turn.set_result(None)
        if key is not None and self._tails.get(key) is turn:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
