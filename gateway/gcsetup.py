"""The cyclic garbage collector's settings, decided once at process start for every role.

With CPython's defaults (a young collection every 700 net allocations, a full one every
100 young ones at most) a role moving thousands of messages a second spends a third of its
CPU in the collector: each message allocates hundreds of short-lived objects, the ones in
flight survive young collections and get promoted, and every full collection walks all the
objects the process holds, the imported modules' included (docs/benchmarks.md, "Garbage
collection"). Almost none of that garbage is cyclic: reference counting frees it.

So, at start (:func:`configure_gc`, called by the CLI before a role runs):

- what exists by then (modules, settings, the interpreter's own objects) is moved out of
  the collector's sight with :func:`gc.freeze`: full collections no longer walk it;
- young collections run every :data:`YOUNG_THRESHOLD` net allocations instead of 700, the
  middle one every :data:`MIDDLE_THRESHOLD` young ones, and a full one after
  :data:`OLD_THRESHOLD` middle ones (and, as always in CPython, only once the objects
  promoted since the last full collection are a quarter of those it holds). Cycles are
  still collected; the memory they hold for longer is bounded by the thresholds.

:class:`GcPauses` times every collection (``smsc_gc_pause_seconds`` by generation) so the
pauses these settings give are visible in production as in the benchmark.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10

_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def configure_gc() -> None:
    """Freeze what start-up allocated and raise the collection thresholds (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


class GcPauses:
    """Times every collection of the garbage collector into ``smsc_gc_pause_seconds``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        histogram = Histogram(
            "smsc_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation collected",
            ["generation"],
            buckets=_PAUSE_BUCKETS,
            registry=registry,
        )
        self._by_generation = [histogram.labels(str(generation)) for generation in range(3)]
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)
