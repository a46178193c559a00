"""Requests with the same Kafka key reach the provider in the order they were consumed.

Records of one partition are processed concurrently, so a record that is throttled and sent
again could otherwise be overtaken by a later record with the same key (the same phone,
usually). Each record waits for the previous record with its key to finish submitting.

A record whose key has no record before it, the usual case, waits for nothing, and nothing
is allocated for waiting: its turn gets a future only when a later record with its key comes
to wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Turn:
    """One record's place in its key's chain; :attr:`done` once it has left."""

    __slots__ = ("_future", "done")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self.done = False

    def wait(self) -> asyncio.Future[None]:
        """A future that is done once this turn has left (made when first asked for)."""
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
            if self.done:
                future.set_result(None)
        return future

    def leave(self) -> None:
        self.done = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)


class KeyOrder:
    """One chain of submissions per key; records without a key are not ordered."""

    def __init__(self) -> None:
        self._tails: dict[Hashable, Turn] = {}

    def enter(self, key: Hashable | None) -> tuple[Turn | None, Turn]:
        """(the previous record's turn, to :meth:`Turn.wait` for, or None; this record's)."""
        turn = Turn()
        if key is None:
            return None, turn
        previous = self._tails.get(key)
        self._tails[key] = turn
        return previous, turn

    def waits(self, key: Hashable | None) -> bool:
        """Whether a record entering with ``key`` now would have a turn to wait for."""
        if key is None:
            return False
        previous = self._tails.get(key)
        return previous is not None and not previous.done

    def leave(self, key: Hashable | None, turn: Turn) -> None:
        """This record is done submitting; the next one with its key may go."""
        turn.leave()
        if key is not None and self._tails.get(key) is turn:
            del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
