"""One timeout for many concurrent waits, with one timer per time slot instead of per wait.

Every callback waits for Kafka's acknowledgement at most ``publish_timeout_seconds``. With
``asyncio.timeout`` that is a timer armed and cancelled per callback (a ``TimerHandle`` in the
loop's heap, or a libuv timer on uvloop): 16 of about 195 µs of CPU per callback in the
benchmark's server without Kafka (docs/benchmarks.md). Here waits whose deadlines fall in
the same slot (``resolution`` seconds wide) share one timer; a wait only joins a set and
leaves it. A wait is cancelled at the end of the slot holding its deadline: at most
``resolution`` after ``seconds``, never before.

Cancellation follows ``asyncio.timeout``: the expired wait's task is cancelled, and the
``CancelledError`` that results becomes :class:`TimeoutError` at the end of the ``with``
block; a cancellation from elsewhere passes through unchanged. Waits that are not tasks (a
callback waiting for its publish to settle) join a slot as any :class:`Expiring` and are
told when their slot ends.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Protocol


class Expiring(Protocol):
    def expire(self) -> None:
        """The deadline passed: give up waiting."""


class SlottedTimeout:
    """A factory of timeouts of ``seconds``, rounded up to slots of ``resolution``."""

    def __init__(self, seconds: float, resolution: float = 0.05) -> None:
        if seconds <= 0 or resolution <= 0:
            raise ValueError("seconds and resolution must be positive")
        self._seconds = seconds
        self._resolution = resolution
        self._slots: dict[int, set[Expiring]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> Wait:
        """A context manager bounding the current task's wait inside it (sync ``with``)."""
        return Wait(self)

    @property
    def pending(self) -> int:
        """Waits registered and not yet left or expired (for tests)."""
        return sum(len(waits) for waits in self._slots.values())

    def join(self, wait: Expiring) -> set[Expiring]:
        """Register ``wait`` in the slot of its deadline; the set it joined (to leave it,
        discard ``wait`` from that set)."""
        loop = self._loop
        # The running loop, known without asking for it: asking costs a getpid() system call
        # per callback on Python 3.11. A timeout serves one thread, where at most one loop runs.
        if loop is None or not loop.is_running():
            loop = asyncio.get_running_loop()
            if loop is not self._loop:  # the slots' timers run on the loop that armed them
                self._loop, self._slots = loop, {}
        slot = math.ceil((loop.time() + self._seconds) / self._resolution)
        waits = self._slots.get(slot)
        if waits is None:
            waits = self._slots[slot] = set()
            loop.call_at(slot * self._resolution, self._expire, slot)
        waits.add(wait)
        return waits

    def _expire(self, slot: int) -> None:
        for wait in self._slots.pop(slot, ()):
            wait.expire()


class Wait:
    """One bounded wait; enter it inside the task that waits."""

    __slots__ = ("_cancelling", "_expired", "_owner", "_task", "_waits")
    _waits: set[Expiring]

    def __init__(self, owner: SlottedTimeout) -> None:
        self._owner = owner
        self._expired = False

    def __enter__(self) -> Wait:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a timeout is only used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._waits = self._owner.join(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._waits.discard(self)
        if not self._expired:
            return
        # Ours was the cancellation (and no other is pending): report it as a timeout.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    @property
    def expired(self) -> bool:
        return self._expired

    def expire(self) -> None:
        self._expired = True
        self._task.cancel()
