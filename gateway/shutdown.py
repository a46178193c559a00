"""Deadlines for a role's way out, so that a stop request always ends the process in time.

A role told to stop has two phases, each with a deadline fixed when the stop arrives:

* the *drain* (the role's drain timeout): work in flight finishes, or is given up and left
  unacknowledged for redelivery;
* the *close* (:data:`CLOSE_SECONDS` more): the final offset commits, unbinding, answering
  what is being stored, flushing and closing the Kafka clients.

Every wait of the close phase goes through :meth:`Shutdown.step`, which gives up at the close
deadline, whatever the step waits for (a broker that is down, a coordinator that cannot be
found, a peer that does not answer an unbind). Cutting a step short is safe because nothing is
acknowledged before it is durable: what a step could not finish (a commit, a flush) is
redone by the next process. So the role ends at most ``drain + CLOSE_SECONDS`` after the stop,
plus half a second for the cancellations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)

# What the closing steps after the drain may take together.
CLOSE_SECONDS = 2.5
# The drain of roles without a drain timeout of their own (the correlator, the poller): the
# step in progress may end by itself; one still waiting for Kafka or the provider is cut.
STEP_DRAIN_SECONDS = 5.0
# How long past its deadline a step cut short may take its cancellation (all steps sharing a
# deadline together: a step that starts late gets what is left of it).
_CANCEL_GRACE_SECONDS = 0.5


class Shutdown:
    """The drain and close deadlines of one role, fixed by the first :meth:`begin`."""

    def __init__(self, drain_seconds: float, close_seconds: float = CLOSE_SECONDS) -> None:
        self._drain = drain_seconds
        self._close = close_seconds
        self._started: float | None = None

    @property
    def started(self) -> bool:
        return self._started is not None

    def begin(self) -> None:
        """The stop request arrived: the deadlines run from now (later calls change nothing)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().time()

    @property
    def drain_deadline(self) -> float:
        """Loop time by which the work in flight is finished or given up."""
        self.begin()
        assert self._started is not None
        return self._started + self._drain

    @property
    def close_deadline(self) -> float:
        """Loop time by which every closing step is over."""
        return self.drain_deadline + self._close

    def drain_left(self) -> float:
        """Seconds left of the drain (0 once it is over)."""
        return max(0.0, self.drain_deadline - asyncio.get_running_loop().time())

    async def step(self, what: str, work: Awaitable[object]) -> bool:
        """Run one closing step until the close deadline; False (logged) if cut short."""
        return await run_until(work, self.close_deadline, what)


async def run_until(work: Awaitable[object], deadline: float, what: str) -> bool:
    """Await ``work`` until ``deadline`` (loop time), then cancel it; False if cut short.

    The step runs as a task of its own and is not waited for beyond a short grace after its
    cancellation: a library whose clean-up itself waits for the network cannot hold the
    shutdown.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
    if done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.warning("shutdown: %s failed: %r", what, error)
        return error is None and not task.cancelled()
    task.cancel()
    grace = deadline + _CANCEL_GRACE_SECONDS - loop.time()
    if grace > 0:
        await asyncio.wait({task}, timeout=grace)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: how it ended no longer matters
    log.warning("shutdown: %s did not finish by its deadline; left behind", what)
    return False


async def until_set(stop: asyncio.Event, work: Awaitable[object], seconds: float) -> bool:
    """Await ``work`` for at most ``seconds``, or until ``stop`` is set (then it is
    cancelled); True if it finished."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (task, stopping):
            waiter.cancel()
    return task.done() and not task.cancelled() and task.exception() is None


async def unless_stopped(stop: asyncio.Event, work: Awaitable[object]) -> bool:
    """Await ``work`` unless ``stop`` is set first (then it is cancelled): True once it
    finished, False if stopped; an error of ``work`` is raised."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        stopping.cancel()
    if not task.done():
        task.cancel()
        return False
    task.result()
    return True


async def stop_when(source: asyncio.Event, target: asyncio.Event) -> None:
    """Set ``target`` once ``source`` is set: a stop of the process reaches an event of a
    role's own, which its parts may set too."""
    await source.wait()
    target.set()
