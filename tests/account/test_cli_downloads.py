"""``smsc-gateway downloads``: every command run as a process against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.simulator.downloads import CANCELLED, FAILED
from gateway.simulator.http_api import HttpApiSimulator
from tests.account.clikit import cli, start_cli
from tests.http_api.httpapi_support import sim_config

CSV = (
    "id;phone;status;cost\n" + "".join(f"{i};7900{i:07d};1;1.95\n" for i in range(20_000))
).encode()


@pytest.fixture
async def sim() -> AsyncIterator[HttpApiSimulator]:
    async with HttpApiSimulator(sim_config()) as simulator:
        yield simulator


async def test_list_shows_every_status_in_words(sim: HttpApiSimulator) -> None:
    assert (await cli(sim, "downloads", "list")).out == "no deferred tasks\n"
    sim.downloads.add_task("gateway", "may", CSV)
    sim.downloads.add_task("gateway", "june", b"", pending_seconds=600)
    sim.downloads.add_task("gateway", "july", b"", run_seconds=600)
    sim.downloads.add_task("gateway", "old", b"", outcome=CANCELLED)
    sim.downloads.add_task("gateway", "broken", b"", outcome=FAILED)
    shown = await cli(sim, "downloads", "list")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "CREATED", "STARTED", "FILE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["1", "may", "completed"],
        ["2", "june", "pending"],
        ["3", "july", "in"],
        ["4", "old", "cancelled"],
        ["5", "broken", "execution"],
    ]
    assert lines[2].split()[-2:] == ["-", "messages_2.csv"], "not started: no start time"
    listed = (
        await cli(sim, "downloads", "list", "--json", "--after-id", "1", "--count", "2")
    ).json()
    assert isinstance(listed, list)
    assert [(t["id"], t["status"]) for t in listed] == [(2, "pending"), (3, "in progress")]
    assert set(listed[0]) == {"id", "name", "status", "created", "started", "file"}


async def test_get_streams_the_file_with_a_progress_bar(
    sim: HttpApiSimulator, tmp_path: Path
) -> None:
    task = sim.downloads.add_task("gateway", "may", CSV)
    target = tmp_path / "may.csv"
    got = await cli(sim, "downloads", "get", "1", "-o", str(target), "--progress")
    assert got.code == 0, got.err
    assert target.read_bytes() == CSV
    assert not (tmp_path / "may.csv.part").exists()
    frames = got.err.split("\r")
    assert frames[1].startswith("[..............................]   0%  0 B / ")
    assert (
        frames[-1]
        == f"[##############################] 100%  {size(len(CSV))} / {size(len(CSV))}\n"
    )
    assert got.out == f"task {task.task_id}: {size(len(CSV))} written to {target}\n"
    quiet = await cli(sim, "downloads", "get", "--name", "may", "--json", cwd=tmp_path)
    assert quiet.err == "", "no bar when stderr is not a terminal"
    assert quiet.json() == {"id": 1, "name": "may", "file": "messages_1.csv", "bytes": len(CSV)}
    assert (tmp_path / "messages_1.csv").read_bytes() == CSV
    to_stdout = await cli(sim, "downloads", "get", "1", "-o", "-")
    assert to_stdout.raw_out == CSV


async def test_get_waits_for_the_task_when_told(sim: HttpApiSimulator, tmp_path: Path) -> None:
    task = sim.downloads.add_task("gateway", "slow", b"a;b\n", pending_seconds=600)
    early = await cli(sim, "downloads", "get", "1")
    assert (early.code, early.err_lines) == (
        1,
        ["smsc-gateway: task 1 is pending; add --wait to wait for it"],
    )
    target = tmp_path / "s.csv"
    waiting = await start_cli(
        sim, "downloads", "get", "1", "--wait", "--interval", "0.2", "-o", str(target)
    )
    assert waiting.stderr is not None
    first = await asyncio.wait_for(waiting.stderr.readline(), 60)
    assert first == b"task 1: pending\n"
    sim.downloads.reschedule(task.task_id, run_seconds=3.0)  # longer than a poll interval
    out, err = await asyncio.wait_for(waiting.communicate(), 60)
    assert waiting.returncode == 0, err
    said = err.decode().splitlines()
    assert "task 1: in progress" in said
    assert said[-1] == "task 1: completed"
    assert set(said) <= {"task 1: pending", "task 1: in progress", "task 1: completed"}
    assert out.decode() == f"task 1: 4 B written to {target}\n"
    assert target.read_bytes() == b"a;b\n"


async def test_a_task_that_fails_or_never_ends_is_an_error(sim: HttpApiSimulator) -> None:
    sim.downloads.add_task("gateway", "bad", b"", run_seconds=0.3, outcome=FAILED)
    failed = await cli(sim, "downloads", "get", "--name", "bad", "--wait", "--interval", "0.2")
    assert failed.code == 1
    assert failed.err_lines[-1] == "smsc-gateway: task 'bad' ended execution error: it has no file"
    sim.downloads.add_task("gateway", "never", b"", pending_seconds=600)
    late = await cli(
        sim, "downloads", "get", "2", "--wait", "--interval", "0.2", "--timeout", "0.5"
    )
    assert late.err_lines[-1] == "smsc-gateway: task 2 still pending after 0.5 s"
    missing = await cli(sim, "downloads", "get", "99")
    assert (missing.code, missing.err_lines) == (1, ["smsc-gateway: task 99 not found"])
    cancelled = await cli(sim, "downloads", "get", "1")
    assert cancelled.err_lines == ["smsc-gateway: task 1 is execution error: it has no file"]
    neither = await cli(sim, "downloads", "get")
    assert neither.code == 2
    assert "one of the arguments ID --name is required" in neither.err


def size(count: int) -> str:
    return f"{count / 1024:.1f} KiB" if count < 1 << 20 else f"{count / (1 << 20):.1f} MiB"
