"""Running the broker's JVMs: child processes that cannot outlive us, and their output."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from gateway.errors import GatewayError

_TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024


class LocalKafkaError(GatewayError):
    """The local broker could not be fetched, started or used; the message says why."""


def death_signal_prefix() -> list[str]:
    """A command prefix that makes the kernel SIGKILL the child if this process dies.

    This is what keeps a JVM (broker or Maven) from outliving a Python process that was
    killed (atexit does not run then). The kernel ties the signal to the *thread* that started
    the child, so it is only used from the main thread, whose end is the end of the process.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


def terminate(process: subprocess.Popen[bytes], timeout_seconds: float) -> None:
    """End ``process`` (and its process group): SIGTERM, then SIGKILL after the timeout."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_seconds)
            return
        except subprocess.TimeoutExpired:
            pass
    kill(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and its process group, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def file_tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            return tail(file.read().decode(errors="replace"))
    except OSError:
        return ""
