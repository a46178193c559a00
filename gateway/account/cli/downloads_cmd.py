"""``smsc-gateway downloads``: the account's deferred tasks and their files.

``list`` shows each task with its status in words; ``get ID`` (or ``--name NAME``) streams a
completed task's CSV to a file (``-o FILE``; the task's own file name by default; ``-o -``
for stdout) with a progress bar on stderr. ``--wait`` polls until the task is completed, then
downloads, or fails when it is cancelled or ends in error; every wait is bounded by
``--timeout``. The provider allows three identical requests a minute, so polls are at least
``--interval`` (21 s) apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, BinaryIO

from ..downloads import DownloadTask, TaskRef, TaskStatus
from .args import Commands, command, group, positive, seconds
from .output import FAILED, show
from .progress import FileSink, size_text
from .session import Session

# Three identical get_list requests a minute (seed 000): one poll every 20 s and a margin.
POLL_SECONDS = 21.0


def register(commands: Commands) -> None:
    downloads = group(commands, "downloads", "deferred tasks and their files (downloads.php)")
    listing = command(downloads, "list", list_tasks, "the deferred tasks and their status")
    listing.add_argument("--after-id", type=positive, help="only tasks after this id")
    listing.add_argument("--count", type=positive, help="at most this many tasks")
    get = command(downloads, "get", get_file, "download a task's file (CSV)")
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("task_id", nargs="?", type=positive, metavar="ID", help="the task's id")
    which.add_argument("--name", help="the task's name instead of its id")
    get.add_argument("-o", "--output", help="the file to write (- for stdout)")
    get.add_argument("--wait", action="store_true", help="wait until the task is completed")
    get.add_argument(
        "--interval", type=seconds, default=POLL_SECONDS, help="seconds between polls (21)"
    )
    get.add_argument(
        "--timeout", type=seconds, default=3600.0, help="give up waiting after this (3600 s)"
    )
    bar = get.add_mutually_exclusive_group()
    bar.add_argument("--progress", action="store_true", default=None, help="always show the bar")
    bar.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show the bar"
    )


async def list_tasks(session: Session, args: argparse.Namespace) -> int:
    tasks = await session.downloads.tasks(after_id=args.after_id, count=args.count)
    columns = ["id", "name", "status", "created", "started", "file"]
    show(
        [_row(t) for t in tasks],
        columns,
        as_json=args.json,
        out=session.console.out,
        empty="no deferred tasks",
    )
    return 0


async def get_file(session: Session, args: argparse.Namespace) -> int:
    console = session.console
    ref = TaskRef(task_id=args.task_id) if args.task_id is not None else TaskRef(name=args.name)
    task = await _ready_task(session, args, ref)
    if task is None:
        return FAILED
    path = _destination(args.output, task)
    show_bar = args.progress if args.progress is not None else console.err.isatty()
    stdout: BinaryIO = console.out.buffer  # -o -: the CSV as it is, bytes
    sink = FileSink(path, stdout, console.err if show_bar else None)
    try:
        size = await session.downloads.fetch(ref, sink)
    except BaseException:
        sink.discard()
        raise
    sink.finish()
    if path is not None:
        result = {"id": task.task_id, "name": task.name, "file": str(path), "bytes": size}
        if args.json:
            show(result, list(result), as_json=True, out=console.out)
        else:
            console.out.write(f"{ref}: {size_text(size)} written to {path}\n")
    return 0


async def _ready_task(
    session: Session, args: argparse.Namespace, ref: TaskRef
) -> DownloadTask | None:
    """The task once it has its file (waiting for it with ``--wait``), or None, said why."""
    if args.wait:
        err = session.console.err

        def said(task: DownloadTask) -> None:
            err.write(f"{ref}: {task.status.words}\n")

        return await session.downloads.wait(
            ref, poll_seconds=args.interval, timeout_seconds=args.timeout, on_status=said
        )
    task = await session.downloads.find(ref)
    if task is None:
        session.console.err.write(f"smsc-gateway: {ref} not found\n")
        return None
    if task.status is not TaskStatus.COMPLETED:
        hint = "; add --wait to wait for it" if not task.status.final else ": it has no file"
        session.console.err.write(f"smsc-gateway: {ref} is {task.status.words}{hint}\n")
        return None
    return task


def _destination(output: str | None, task: DownloadTask) -> Path | None:
    """``-o``'s file (None: stdout), else the task's file name in the current directory
    (its last component only: the provider's name never picks the directory)."""
    if output == "-":
        return None
    if output:
        return Path(output)
    return Path(Path(task.file).name or f"task-{task.task_id}.csv")


def _row(task: DownloadTask) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "name": task.name,
        "status": task.status.words,
        "created": task.created,
        "started": task.time,
        "file": task.file,
    }
