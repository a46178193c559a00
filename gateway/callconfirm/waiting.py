"""Waits that end early when the role is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; False when ``stop`` is or gets set first."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def before_stop(
    stop: asyncio.Event, work: Awaitable[Any], *, within_seconds: float | None = None
) -> bool:
    """Await ``work`` unless ``stop`` (or ``within_seconds``) comes first; True if it did."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {task, stopping}, timeout=within_seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for pending in (task, stopping):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    return task in done
