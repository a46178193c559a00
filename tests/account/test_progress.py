"""The download sink and its progress bar, without a provider."""

from __future__ import annotations

import io
from pathlib import Path

from gateway.account.cli.progress import FileSink, ProgressBar, size_text


def test_the_bar_fills_with_the_share_done_and_names_sizes() -> None:
    bar = ProgressBar(2048, width=10)
    assert bar.line(0) == "[..........]   0%  0 B / 2.0 KiB"
    assert bar.line(1024) == "[#####.....]  50%  1.0 KiB / 2.0 KiB"
    assert bar.line(4096) == "[##########] 100%  4.0 KiB / 2.0 KiB"
    assert ProgressBar(None).line(3 << 20) == "3.0 MiB received"
    assert size_text(5 << 30) == "5.0 GiB"


def test_the_file_gets_its_name_only_once_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    progress = io.StringIO()
    ticks = iter(range(100))
    sink = FileSink(target, io.BytesIO(), progress, redraw_seconds=2, clock=lambda: next(ticks))
    sink.begin(6)
    for chunk in (b"ab", b"cd", b"ef"):
        sink.write(chunk)
        assert not target.exists()
    sink.finish()
    assert target.read_bytes() == b"abcdef"
    assert not (tmp_path / "out.csv.part").exists()
    frames = progress.getvalue().split("\r")[1:]
    assert frames[0].startswith("[....")
    assert frames[-1].endswith("100%  6 B / 6 B\n")
    assert len(frames) == 3, "redrawn at most every 2 ticks, and at the start and the end"


def test_a_broken_download_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    sink = FileSink(target, io.BytesIO(), None)
    sink.begin(None)
    sink.write(b"half")
    sink.discard()
    assert list(tmp_path.iterdir()) == []


def test_without_a_path_the_bytes_go_to_stdout() -> None:
    stdout = io.BytesIO()
    sink = FileSink(None, stdout, None)
    sink.begin(3)
    sink.write(b"a;b")
    sink.finish()
    assert stdout.getvalue() == b"a;b"
