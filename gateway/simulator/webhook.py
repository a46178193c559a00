"""The simulator calling a client handler the way the provider does, retries included.

Webhook seed: "If the Client handler returns a response with an error code other than 200 or
404, the Server will repeat the request to the handler with a certain frequency (1 request
every 4 minutes, total 50 attempts)." A connection error or a timeout counts as such an
answer. The interval and the number of attempts are settable (tests run with a fraction of
a second), and so is the sleep, for a test that drives time itself.

Usage::

    async with WebhookCaller("http://127.0.0.1:8080/smsc/callback?sha1=s3cret") as caller:
        caller.submit(status_notice("101", "79990000001", 1))
        results = await caller.join()
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
from yarl import URL

from .webhook_request import HandlerUrl, Notice, WebhookRequest, build_request

log = logging.getLogger(__name__)

RETRY_INTERVAL_SECONDS = 240.0
MAX_ATTEMPTS = 50
# Answers after which the provider stops repeating a callback.
FINAL_ANSWERS = frozenset({200, 404})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one callback ended: ``delivered`` (200), ``dropped`` (404) or ``gave_up``."""

    notice: Notice
    outcome: str
    attempts: int
    answers: tuple[int | None, ...]  # each attempt's status; None for no answer


@dataclass
class WebhookStats:
    """Counts across every callback of a caller; ``answers`` by status (``None``: no answer)."""

    attempts: int = 0
    answers: Counter[int | None] = field(default_factory=Counter)
    delivered: int = 0
    dropped: int = 0
    gave_up: int = 0


class WebhookCaller:
    """Delivers callbacks to one handler URL; owns the deliveries it runs in the background."""

    def __init__(
        self,
        handler_url: str | HandlerUrl,
        *,
        retry_interval_seconds: float = RETRY_INTERVAL_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if isinstance(handler_url, str):
            handler_url = HandlerUrl.parse(handler_url)
        self.handler = handler_url
        self.stats = WebhookStats()
        self._interval = retry_interval_seconds
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[DeliveryResult]] = set()
        self._results: list[DeliveryResult] = []

    async def __aenter__(self) -> WebhookCaller:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Abandon the deliveries still retrying, then close the HTTP session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def submit(self, notice: Notice) -> asyncio.Task[DeliveryResult]:
        """Deliver ``notice`` in the background, on the retry schedule."""
        task = asyncio.create_task(self.deliver(notice))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def join(self) -> list[DeliveryResult]:
        """Wait until every submitted callback has ended; the results so far, in end order."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        return list(self._results)

    async def deliver(self, notice: Notice) -> DeliveryResult:
        """Call the handler until it answers 200 or 404, at most ``max_attempts`` times."""
        request = build_request(self.handler, notice)
        answers: list[int | None] = []
        while True:
            answer = await self._attempt(request)
            answers.append(answer)
            if answer in FINAL_ANSWERS or len(answers) >= self._max_attempts:
                return self._finish(notice, answers)
            await self._sleep(self._interval)

    async def _attempt(self, request: WebhookRequest) -> int | None:
        if self._session is None:
            raise RuntimeError("WebhookCaller is used outside its 'async with' block")
        self.stats.attempts += 1
        headers = {"Content-Type": request.content_type}
        try:
            async with self._session.request(
                request.method, URL(request.url, encoded=True), data=request.body, headers=headers
            ) as response:
                await response.read()
                status: int | None = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("webhook call failed: %r", exc)
            status = None
        self.stats.answers[status] += 1
        return status

    def _finish(self, notice: Notice, answers: list[int | None]) -> DeliveryResult:
        if answers[-1] == 200:
            outcome = "delivered"
            self.stats.delivered += 1
        elif answers[-1] == 404:
            outcome = "dropped"
            self.stats.dropped += 1
        else:
            outcome = "gave_up"
            self.stats.gave_up += 1
        result = DeliveryResult(notice, outcome, len(answers), tuple(answers))
        self._results.append(result)
        return result
