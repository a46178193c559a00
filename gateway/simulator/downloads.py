"""``/sys/downloads.php``, simulated: deferred tasks that unload sent messages (seed 000).

- ``get_list=1[&cnt=N][&after_id=ID]``: the login's tasks with ids after ``after_id``, at most
  ``cnt``, each with ``id``, ``name``, ``status`` (0 pending, 1 in progress, 2 completed,
  3 cancelled, 4 execution error), ``created``, ``time`` (when it started) and ``file``.
- ``get_file=1&id=ID`` or ``get_file=1&name=NAME``: the task's CSV file, once completed.
  Error 5 for a task or file the provider does not know; a task not completed has no file
  yet, so it answers 5 too (the seed does not say what it answers then: an assumption).

Tasks are made by tests and by the demo with :meth:`DownloadsScript.add_task` (on the real
service the personal account makes them); each stays pending, then in progress, for the
times given, then ends with the outcome given. The file goes out as ``text/csv`` bytes as
they were given (the seed names only "csv format"). Error 9 for a fourth identical request
within the minute.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.settings.simulator_accounts import AccountScriptsSettings

from .http_api_centre import ApiError
from .http_api_scripts import IdenticalRequests, ScriptReply, render_items

PENDING, RUNNING, COMPLETED, CANCELLED, FAILED = range(5)


@dataclass(frozen=True, slots=True)
class SimTask:
    task_id: int
    login: str
    name: str
    file: str
    content: bytes
    created: float
    started: float
    finished: float
    outcome: int

    def status(self, now: float) -> int:
        if now < self.started:
            return PENDING
        return RUNNING if now < self.finished else self.outcome

    def fields(self, now: float) -> dict[str, Any]:
        started = now >= self.started
        return {
            "id": self.task_id,
            "name": self.name,
            "status": self.status(now),
            "created": _date(self.created),
            "time": _date(self.started) if started else "",
            "file": self.file,
        }


class DownloadsScript:
    """See the module docstring."""

    name = "downloads"

    def __init__(
        self,
        config: AccountScriptsSettings,
        *,
        window_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._wall_clock = wall_clock
        self._identical = IdenticalRequests(
            config.downloads_identical_per_window, window_seconds, clock
        )
        self._ids = itertools.count(1)
        self.tasks: dict[int, SimTask] = {}

    def add_task(
        self,
        login: str,
        name: str,
        content: bytes,
        *,
        pending_seconds: float = 0.0,
        run_seconds: float = 0.0,
        outcome: int = COMPLETED,
    ) -> SimTask:
        """A task of ``login`` that starts after ``pending_seconds``, runs ``run_seconds``
        and ends ``outcome`` (2 completed, 3 cancelled, 4 failed) with ``content`` its file."""
        if outcome not in {COMPLETED, CANCELLED, FAILED}:
            raise ValueError(f"outcome {outcome} is not a final task status")
        now = self._wall_clock()
        task_id = next(self._ids)
        started = now + pending_seconds
        task = SimTask(
            task_id,
            login,
            name,
            f"messages_{task_id}.csv",
            content,
            now,
            started,
            started + run_seconds,
            outcome,
        )
        self.tasks[task_id] = task
        return task

    def reschedule(self, task_id: int, *, start_in: float = 0.0, run_seconds: float = 0.0) -> None:
        """Start task ``task_id`` ``start_in`` seconds from now and run it ``run_seconds``
        (tests move a task on when they choose)."""
        task = self.tasks[task_id]
        started = self._wall_clock() + start_in
        self.tasks[task_id] = dataclasses.replace(
            task, started=started, finished=started + run_seconds
        )

    def answer(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        if self._identical.refused(login, params):
            return ApiError(9, "duplicate request, wait a minute")
        if params.get("get_list") == "1":
            return self._list(login, params, fmt)
        if params.get("get_file") == "1":
            return self._file(login, params)
        return ApiError(1)

    def _list(self, login: str, params: Mapping[str, str], fmt: int) -> ScriptReply | ApiError:
        count, after = params.get("cnt", ""), params.get("after_id", "0")
        if (count and not count.isdigit()) or not after.isdigit():
            return ApiError(1)
        now = self._wall_clock()
        mine = [t for t in self.tasks.values() if t.login == login and t.task_id > int(after)]
        shown = mine[: int(count)] if count else mine
        return render_items(fmt, [t.fields(now) for t in shown], "task")

    def _file(self, login: str, params: Mapping[str, str]) -> ScriptReply | ApiError:
        task_id, name = params.get("id", ""), params.get("name", "")
        if bool(task_id) == bool(name) or (task_id and not task_id.isdigit()):
            return ApiError(1)
        task = self._find(login, int(task_id) if task_id else None, name)
        if task is None or task.status(self._wall_clock()) != COMPLETED:
            return ApiError(5, "task or file not found")
        return ScriptReply(task.content, "text/csv")

    def _find(self, login: str, task_id: int | None, name: str) -> SimTask | None:
        for task in self.tasks.values():
            wanted = task.task_id == task_id if task_id is not None else task.name == name
            if task.login == login and wanted:
                return task
        return None


def _date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%d.%m.%Y %H:%M:%S")
