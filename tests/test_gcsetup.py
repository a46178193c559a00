"""The garbage collector's settings every role starts with, and its pauses as a metric."""

from __future__ import annotations

import gc
import subprocess
import sys

from prometheus_client import CollectorRegistry

from gateway.gcsetup import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD, GcPauses


def test_configure_gc_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    # In a process of its own: the settings are for a whole process, not this test run's.
    script = (
        "import gc\n"
        "from gateway.gcsetup import configure_gc\n"
        "configure_gc()\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert out.strip() == f"{(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)} True"


def test_every_collection_is_timed_by_generation() -> None:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    pauses.install()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        pauses.remove()
    gc.collect()  # not counted any more

    def count(generation: str) -> float | None:
        return registry.get_sample_value("smsc_gc_pause_seconds_count", {"generation": generation})

    assert count("2") == 1
    young = count("0")
    assert young is not None
    assert young >= 1
    total = registry.get_sample_value("smsc_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None
    assert total > 0
