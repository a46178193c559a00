"""The event loop the ingress runs on: uvloop by default, asyncio's own as the fallback.

Every callback costs an HTTP exchange and a share of a Kafka produce request; with uvloop
the socket and timer work under both runs in libuv instead of the interpreter
(docs/benchmarks.md measures both loops side by side).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: str) -> LoopFactory | None:
    """A factory of the named loop for ``asyncio.Runner``; ``None`` means asyncio's own.

    ``uvloop`` falls back to asyncio's loop, with a warning, when it is not installed.
    """
    if name != "uvloop":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: only this role asks for it
    except ImportError:
        log.warning("uvloop is not installed; running on asyncio's event loop")
        return None
    return uvloop.new_event_loop
