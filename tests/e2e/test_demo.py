"""The README's first command: ``smsc-gateway demo`` runs the whole path and says it is OK.

It starts a broker of its own, the simulator and the sender, sends, follows results, delivery
reports and subscriber replies (long ones reassembled), and exits 0 only when all arrived.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.kafka


def test_demo_runs_end_to_end() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--count", "40"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-4000:]
    assert "demo OK" in output
    assert "results: 41 for 41 requests with an id: {'accepted': 40, 'rejected': 1}" in output
    assert "delivery reports: 40 of 40 accepted messages" in output
    assert "incoming SMS: 3 of 3 replies intact" in output
