"""Deferred tasks that unload sent messages: downloads.php (seed 000).

- ``get_list=1[&cnt=N][&after_id=ID]``: the tasks, each with ``id``, ``name``, ``status``,
  ``created``, ``time`` (its start) and ``file`` [DOC seed 000].
- ``get_file=1&id=ID`` or ``get_file=1&name=NAME``: the task's file, CSV, once the task is
  completed (status 2) [DOC seed 000]. Error 5: no such task or file [DOC seed 000]; what it
  answers for a task not completed yet is not documented (the simulator: 5 too).

Errors: 1 parameters, 2 credentials, 4 IP blocked, 5 not found, 9 more than three identical
requests a minute [DOC seed 000].
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.http_api.errors import HttpApiError

from .calls import ScriptCaller, as_int, as_text, records, unexpected

if TYPE_CHECKING:
    from gateway.http_api.client import DownloadSink

log = logging.getLogger(__name__)

SCRIPT = "downloads"


class TaskStatus(IntEnum):
    """Seed 000: 0 pending, 1 in progress, 2 completed, 3 canceled, 4 execution error."""

    PENDING = 0
    RUNNING = 1
    COMPLETED = 2
    CANCELLED = 3
    FAILED = 4

    @property
    def words(self) -> str:
        return _WORDS[self]

    @property
    def final(self) -> bool:
        return self >= TaskStatus.COMPLETED


_WORDS: Mapping[TaskStatus, str] = {
    TaskStatus.PENDING: "pending",
    TaskStatus.RUNNING: "in progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.FAILED: "execution error",
}


@dataclass(frozen=True, slots=True)
class DownloadTask:
    task_id: int
    name: str
    status: TaskStatus
    created: str
    time: str
    file: str


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task named by its id or by its name (get_file takes either)."""

    task_id: int | None = None
    name: str | None = None

    def params(self) -> dict[str, str]:
        return {"id": str(self.task_id)} if self.task_id is not None else {"name": self.name or ""}

    def matches(self, task: DownloadTask) -> bool:
        return task.task_id == self.task_id if self.task_id is not None else task.name == self.name

    def __str__(self) -> str:
        return f"task {self.task_id}" if self.task_id is not None else f"task {self.name!r}"


class TaskWaitError(GatewayError):
    """A waited-for task ended without a file, vanished, or did not end in time."""


def parse_tasks(document: Any) -> list[DownloadTask]:
    found = []
    for item in records(SCRIPT, document):
        task_id, status = as_int(item.get("id")), as_int(item.get("status"))
        if task_id is None or status is None or status not in set(TaskStatus):
            raise unexpected(SCRIPT, item)
        found.append(
            DownloadTask(
                task_id,
                as_text(item.get("name")),
                TaskStatus(status),
                as_text(item.get("created")),
                as_text(item.get("time")),
                as_text(item.get("file")),
            )
        )
    return found


class DownloadsApi:
    """downloads.php through ``caller`` (limits and concurrency kept there)."""

    def __init__(self, caller: ScriptCaller) -> None:
        self._caller = caller

    async def tasks(
        self, *, after_id: int | None = None, count: int | None = None
    ) -> list[DownloadTask]:
        params = {"get_list": "1"}
        if after_id is not None:
            params["after_id"] = str(after_id)
        if count is not None:
            params["cnt"] = str(count)
        return parse_tasks(await self._caller.call(SCRIPT, params, resend=True))

    async def find(self, ref: TaskRef) -> DownloadTask | None:
        return next((t for t in await self.tasks() if ref.matches(t)), None)

    async def fetch(self, ref: TaskRef, sink: DownloadSink) -> int:
        """The task's file into ``sink``; its length (error 5: not found or not ready)."""
        return await self._caller.download(SCRIPT, {"get_file": "1", **ref.params()}, sink)

    async def wait(
        self,
        ref: TaskRef,
        *,
        poll_seconds: float,
        timeout_seconds: float,
        on_status: Callable[[DownloadTask], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> DownloadTask:
        """The task once completed; :class:`TaskWaitError` when it is cancelled or fails,
        disappears, or is not done within ``timeout_seconds``. Each poll is one get_list (the
        caller keeps them to three a minute); a poll the provider refuses for a while (error
        9 from requests of another process, error 4, no answer) is tried at the next one."""
        deadline = clock() + timeout_seconds
        last = "not answered"
        while True:
            task = await self._poll(ref)
            if task is not None:
                on_status(task)
                if task.status is TaskStatus.COMPLETED:
                    return task
                if task.status.final:
                    raise TaskWaitError(f"{ref} ended {task.status.words}: it has no file")
                last = task.status.words
            if clock() + poll_seconds > deadline:
                raise TaskWaitError(f"{ref} still {last} after {timeout_seconds:g} s")
            await asyncio.sleep(poll_seconds)

    async def _poll(self, ref: TaskRef) -> DownloadTask | None:
        """The task now; None when the provider asks to wait. Not found is final."""
        try:
            task = await self.find(ref)
        except HttpApiError as exc:
            if not exc.retriable:
                raise
            log.info("%s: poll refused for now (%s)", ref, exc)
            return None
        if task is None:
            raise TaskWaitError(f"{ref} not found")
        return task
