"""A download written to a file as it arrives, with a progress bar on stderr.

:class:`ProgressBar` only renders a line from bytes done and the total (no I/O, no clock).
:class:`FileSink` is the :class:`~gateway.http_api.client.DownloadSink` the command hands
the client: it writes to ``<file>.part`` and renames it only once the file is whole, so a
broken download never leaves a file that looks complete; it redraws the bar at most every
``redraw_seconds`` (with ``\\r``, on one line) and prints the last state with a newline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

_UNITS = ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def size_text(count: int) -> str:
    for size, unit in _UNITS:
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True, slots=True)
class ProgressBar:
    """``[#####.....]  50%  1.0 MiB / 2.0 MiB``; without a total, the bytes so far."""

    total: int | None
    width: int = 30

    def line(self, done: int) -> str:
        if not self.total:
            return f"{size_text(done)} received"
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        return f"[{bar}] {share:4.0%}  {size_text(done)} / {size_text(self.total)}"


class FileSink:
    """See the module docstring; ``path`` None writes to ``stdout`` (binary) instead."""

    def __init__(
        self,
        path: Path | None,
        stdout: BinaryIO,
        progress: TextIO | None,
        *,
        redraw_seconds: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".part") if path is not None else None
        self._file: BinaryIO = self._partial.open("wb") if self._partial is not None else stdout
        self._progress = progress
        self._redraw = redraw_seconds
        self._clock = clock
        self._bar = ProgressBar(None)
        self._drawn_at = float("-inf")
        self.done = 0

    def begin(self, total_bytes: int | None) -> None:
        self._bar = ProgressBar(total_bytes)
        self._draw(force=True)

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.done += len(chunk)
        self._draw(force=False)

    def finish(self) -> None:
        """The file is whole: flushed, closed and given its name."""
        self._file.flush()
        if self._partial is not None and self.path is not None:
            self._file.close()
            os.replace(self._partial, self.path)
        self._draw(force=True)
        if self._progress is not None:
            self._progress.write("\n")

    def discard(self) -> None:
        """The download failed: the partial file goes."""
        if self._partial is not None:
            self._file.close()
            self._partial.unlink(missing_ok=True)
        if self._progress is not None and self._drawn_at > float("-inf"):
            self._progress.write("\n")

    def _draw(self, *, force: bool) -> None:
        if self._progress is None:
            return
        now = self._clock()
        if not force and now - self._drawn_at < self._redraw:
            return
        self._drawn_at = now
        self._progress.write("\r" + self._bar.line(self.done))
        self._progress.flush()
