"""The provider's HTTP API, simulated: ``/sys/send.php``, ``/sys/status.php``, ``/sys/balance.php``,
``/sys/get.php?get_answers=1`` (:mod:`.http_api_inbox`), ``/sys/wait_call.php``
(:mod:`.http_api_calls`), and the account scripts ``receive_phones.php``, ``downloads.php``
and ``phones.php`` (a module each, see :mod:`.http_api_scripts`).

GET or POST (form-urlencoded or multipart), parameters decoded in the request's ``charset``
(windows-1251 by default, utf-8, koi8-r) and answers encoded in it, in ``fmt`` 0 to 3, always
with HTTP 200 (reference 0). The rules are :class:`~.http_api_centre.HttpApiCentre`'s; this
module adds what needs the server: requests in flight per login (error 9 at
``max_concurrent``, at ``max_concurrent_status`` for status.php), a processing time, injected
faults (:mod:`.http_api_faults`), and the callbacks :class:`~.webhook.WebhookCaller` makes to
``webhook_url``: the status of every message sent through it once final, every incoming SMS
(:meth:`HttpApiSimulator.receive_sms`) and every subscriber's confirmation call
(:meth:`HttpApiSimulator.place_call`, or by itself with ``calls.call_after_seconds``).

Usage::

    async with HttpApiSimulator(HttpApiSimulatorSettings(status_delay_seconds=0.1)) as sim:
        ...  # call sim.base_url + "/sys/send.php"
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import parse_qsl

from aiohttp import web

from gateway.settings.simulator_http_api import HttpApiSimulatorSettings

from .downloads import DownloadsScript
from .http_api_calls import WAITCALL_TEXT, CallDesk, IssuedNumber, render_wait_call
from .http_api_centre import ApiError, HttpApiCentre, HttpApiStats, SendAccepted
from .http_api_faults import HttpApiFaults
from .http_api_formats import (
    CHARSETS,
    DEFAULT_CHARSET,
    content_type,
    render_balance,
    render_error,
    render_send,
    render_status,
)
from .http_api_inbox import Inbox, SimIncoming, render_answers
from .http_api_messages import COMMENT_MARKER, SimMessage
from .http_api_scripts import ScriptHandler, ScriptReply
from .phones import PhonesScript
from .receive_phones import ReceivePhonesScript
from .webhook import WebhookCaller
from .webhook_request import incoming_notice, status_notice, waitcall_notice

log = logging.getLogger(__name__)

SCRIPTS = ("send", "status", "balance", "get", "wait_call")


class HttpApiSimulator:
    """See the module docstring. ``wall_clock`` is Unix time (message and status dates)."""

    def __init__(
        self,
        config: HttpApiSimulatorSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or HttpApiSimulatorSettings()
        self.centre = HttpApiCentre(self.config, clock=clock, wall_clock=wall_clock)
        self.faults = HttpApiFaults()
        self.port = self.config.port
        self._clock = clock
        self._wall_clock = wall_clock
        self.inbox = Inbox(self.config.inbox, self.config.window_seconds)
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self.numbers, self.downloads, self.phones = self._account_scripts(clock, wall_clock)
        # One blacklist per login: phones.php's, which wait_call.php refuses too.
        window, balances = self.config.window_seconds, self.centre.balances
        self.calls = CallDesk(self.config.calls, window, balances, self.phones.blacklisted)
        self._scripts: dict[str, ScriptHandler] = {
            s.name: s for s in (self.numbers, self.downloads, self.phones)
        }
        names = "|".join((*SCRIPTS, *self._scripts))
        self._app = web.Application()
        self._app.router.add_route("*", f"/sys/{{script:({names})}}.php", self._handle)
        self._runner = web.AppRunner(self._app, access_log=None)
        self._webhook: WebhookCaller | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._timer_ids = itertools.count()

    def _account_scripts(
        self, clock: Callable[[], float], wall_clock: Callable[[], float]
    ) -> tuple[ReceivePhonesScript, DownloadsScript, PhonesScript]:
        config, window = self.config.account, self.config.window_seconds
        balances = self.centre.balances
        return (
            ReceivePhonesScript(
                config, balances, window_seconds=window, clock=clock, wall_clock=wall_clock
            ),
            DownloadsScript(config, window_seconds=window, clock=clock, wall_clock=wall_clock),
            PhonesScript(
                config,
                window_seconds=window,
                clock=clock,
                wall_clock=wall_clock,
                blacklist=self.config.calls.blacklist,
            ),
        )

    @property
    def stats(self) -> HttpApiStats:
        return self.centre.stats

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def __aenter__(self) -> HttpApiSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.config.webhook_url:
            self._webhook = WebhookCaller(
                self.config.webhook_url,
                retry_interval_seconds=self.config.webhook_retry_seconds,
                max_attempts=self.config.webhook_max_attempts,
            )
            await self._webhook.__aenter__()
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sockets = [s for s in self._runner.addresses if isinstance(s, tuple)]
        self.port = int(sockets[0][1]) if sockets else self.config.port
        log.info("HTTP API simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop listening; callbacks not yet due or still retrying are abandoned."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self._runner.cleanup()
        if self._webhook is not None:
            await self._webhook.close()

    async def join_callbacks(self) -> None:
        """Wait for the callbacks started so far to end (tests)."""
        if self._webhook is not None:
            await self._webhook.join()

    async def _handle(self, request: web.Request) -> web.Response:
        script = request.match_info["script"]
        params = await read_params(request)
        fmt, charset = _fmt(params), _charset(params)
        self.stats.requests[script] += 1
        failure = self.faults.take("status", script)
        if failure is not None and not failure[1]:
            return web.Response(status=int(failure[0]))
        text = await self._answer(script, params, request.remote or "", fmt)
        if failure is not None:
            return web.Response(status=int(failure[0]))
        delay = self.faults.take("response", script)
        if delay is not None:
            await asyncio.sleep(delay[0])
        if isinstance(text, ScriptReply):
            if isinstance(text.body, bytes):  # a file, as it is
                kind = text.content_type or "application/octet-stream"
                return web.Response(body=text.body, content_type=kind)
            text = text.body
        body = text.encode(charset, "replace")
        return web.Response(body=body, headers={"Content-Type": content_type(fmt, charset)})

    async def _answer(
        self, script: str, params: Mapping[str, str], ip: str, fmt: int
    ) -> str | ScriptReply:
        login = self.centre.authenticate(params, ip)
        if isinstance(login, ApiError):
            return self._error(script, fmt, login)
        if not self._enter(login, script):
            return self._error(script, fmt, ApiError(9, "too many concurrent requests"))
        try:
            claim = self.centre.claim_send(login, params) if script == "send" else None
            if claim is not None:
                return self._error(script, fmt, claim)
            await self._process(script)
            handler = self._scripts.get(script)
            if handler is not None:
                return self._run_script(handler, login, params, fmt)
            return self._run(script, login, params, fmt)
        finally:
            self._leave(login, script)

    async def _process(self, script: str) -> None:
        held = self.faults.take("processing", script)
        seconds = self.config.processing_seconds + (held[0] if held is not None else 0.0)
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _run_script(
        self, handler: ScriptHandler, login: str, params: Mapping[str, str], fmt: int
    ) -> str | ScriptReply:
        reply = handler.answer(login, params, fmt)
        return self._error(handler.name, fmt, reply) if isinstance(reply, ApiError) else reply

    def _run(self, script: str, login: str, params: Mapping[str, str], fmt: int) -> str:
        scripts = {
            "send": self._send,
            "status": self._status,
            "balance": self._balance,
            "get": self._get_answers,
            "wait_call": self._wait_call,
        }
        return scripts[script](login, params, fmt)

    def _send(self, login: str, params: Mapping[str, str], fmt: int) -> str:
        sent = self.centre.send(login, params)
        if isinstance(sent, ApiError):
            return self._error("send", fmt, sent)
        self._schedule_callbacks(sent)
        return render_send(fmt, sent, params.get("cost", "0"))

    def _status(self, login: str, params: Mapping[str, str], fmt: int) -> str:
        answer = self.centre.status(login, params)
        if isinstance(answer, ApiError):
            return self._error("status", fmt, answer)
        return render_status(fmt, answer)

    def _balance(self, login: str, params: Mapping[str, str], fmt: int) -> str:
        balance = self.centre.balance(login)
        if isinstance(balance, ApiError):
            return self._error("balance", fmt, balance)
        currency = self.config.currency if params.get("cur") == "1" else None
        return render_balance(fmt, balance, currency)

    def _get_answers(self, login: str, params: Mapping[str, str], fmt: int) -> str:
        found = self.inbox.answers(login, params, now=self._wall_clock(), mono=self._clock())
        if isinstance(found, ApiError):
            return self._error("get", fmt, found)
        return render_answers(fmt, found, self.inbox.zone)

    def _wait_call(self, login: str, params: Mapping[str, str], fmt: int) -> str:
        issued = self.calls.issue(login, params, now=self._wall_clock(), mono=self._clock())
        if isinstance(issued, ApiError):
            return self._error("wait_call", fmt, issued)
        if self.calls.calls_back(issued.phone) and self.config.calls.call_after_seconds is not None:
            key = next(self._timer_ids)
            self._timers[key] = asyncio.get_running_loop().call_later(
                self.config.calls.call_after_seconds, self._call_back, key, issued.phone
            )
        return render_wait_call(fmt, issued)

    def _call_back(self, key: int, phone: str) -> None:
        self._timers.pop(key, None)
        self.place_call(phone)

    def receive_sms(
        self,
        phone: str,
        message: str,
        *,
        to_phone: str | None = None,
        login: str | None = None,
        sms_id: int | None = None,
    ) -> SimIncoming:
        """A subscriber's SMS reaches the account (the first login unless named): get.php
        lists it from now on and, with ``webhook_url``, the handler is told."""
        login = login or next(iter(self.config.accounts))
        to_phone = to_phone or self.config.inbox.number
        incoming = self.inbox.receive(
            login, phone, message, to_phone, now=self._wall_clock(), sms_id=sms_id
        )
        if self._webhook is not None and self.config.inbox.to_webhook:
            notice = incoming_notice(
                incoming.phone,
                incoming.message,
                incoming.to_phone,
                id=incoming.incoming_id,
                sms_id=incoming.sms_id,
                sent=int(incoming.sent),
                time=int(incoming.received),
            )
            self._webhook.submit(notice)
            self.stats.callbacks += 1
        return incoming

    def place_call(self, phone: str, **voice_menu: str) -> IssuedNumber | None:
        """The subscriber ``phone`` calls the number they were given: recorded as an incoming
        "[waitcall] " message and, with ``webhook_url``, reported to the handler (with the
        voice-menu fields given). None when no number is open for the phone."""
        now = self._wall_clock()
        issued = self.calls.call(phone, now=now)
        if issued is None:
            return None
        self.inbox.receive(issued.login, issued.phone, WAITCALL_TEXT, issued.call_to, now=now)
        self.calls.placed += 1
        if self._webhook is not None:
            self._webhook.submit(waitcall_notice(issued.phone, int(now), **voice_menu))
            self.stats.callbacks += 1
        return issued

    def _error(self, script: str, fmt: int, error: ApiError) -> str:
        self.stats.errors[(script, error.code)] += 1
        return render_error(fmt, error)

    def _enter(self, login: str, script: str) -> bool:
        """Take a slot; False when the login already has as many requests as allowed (the
        provider: error 9 at 15 concurrent requests, at 5 for status.php)."""
        keys = [(login, "all")] + ([(login, "status")] if script == "status" else [])
        limits = {"all": self.config.max_concurrent, "status": self.config.max_concurrent_status}
        if any(self._in_flight[key] + 1 >= limits[key[1]] for key in keys):
            return False
        for key in keys:
            self._in_flight[key] += 1
            peak = self.stats.peak_in_flight
            peak[key[1]] = max(peak[key[1]], self._in_flight[key])
        return True

    def _leave(self, login: str, script: str) -> None:
        self._in_flight[(login, "all")] -= 1
        if script == "status":
            self._in_flight[(login, "status")] -= 1

    def _schedule_callbacks(self, sent: SendAccepted) -> None:
        if self._webhook is None:
            return
        loop = asyncio.get_running_loop()
        for message in sent.messages:
            delay = max(0.0, message.final_at - self._wall_clock())
            key = next(self._timer_ids)
            self._timers[key] = loop.call_later(delay, self._callback, key, message)

    def _callback(self, key: int, message: SimMessage) -> None:
        self._timers.pop(key, None)
        if self._webhook is None:
            return
        status, err, changed = message.status_at(self._wall_clock())
        _, _, comment = message.text.partition(COMMENT_MARKER)
        notice = status_notice(
            str(message.message_id),
            message.phone,
            status,
            time=datetime.fromtimestamp(changed, UTC).strftime("%d.%m.%y %H:%M:%S"),
            ts=int(changed),
            err=err,
            cnt=message.parts,
            type=0,
            cost=f"{message.cost:.2f}",
            flag=0,
            sender=message.sender or None,
            cmt=comment or None,
        )
        self._webhook.submit(notice)
        self.stats.callbacks += 1


async def read_params(request: web.Request) -> dict[str, str]:
    """The request's parameters (query string and body), decoded in its ``charset``."""
    query = request.rel_url.raw_query_string
    if request.method != "POST":
        return _decode(query.encode("latin-1"))
    if request.content_type == "multipart/form-data":
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return _decode(query.encode("latin-1")) | fields
    body = await request.read()
    return _decode(query.encode("latin-1") + b"&" + body)


def _decode(raw: bytes) -> dict[str, str]:
    # The charset is itself a parameter: find it in an ASCII-safe reading first.
    declared = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)).get("charset", "")
    charset = declared.lower() if declared.lower() in CHARSETS else DEFAULT_CHARSET
    text = raw.decode(charset, "replace")
    return dict(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace"))


def _fmt(params: Mapping[str, str]) -> int:
    fmt = params.get("fmt", "0")
    return int(fmt) if fmt in {"0", "1", "2", "3"} else 0


def _charset(params: Mapping[str, str]) -> str:
    charset = params.get("charset", "").lower()
    return charset if charset in CHARSETS else DEFAULT_CHARSET
