"""Running one account command: settings, the HTTP API client, and turning errors into lines.

A command is an ``async`` handler taking a :class:`Session` and its parsed arguments and
returning the exit code. :func:`run_command` reads the settings (``GATEWAY_HTTP_API_*``: a
credential is required), opens one :class:`~gateway.http_api.client.SmscHttpClient` for the
command, and prints any :class:`~gateway.errors.GatewayError` as one line (exit 1; 2 for a
configuration problem). Logs are off unless ``--verbose``: the error line says it all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from gateway.errors import ConfigError, GatewayError
from gateway.http_api.client import SmscHttpClient
from gateway.http_api.metrics import HttpApiMetrics
from gateway.logsetup import configure_logging
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings

from ..calls import ScriptCaller
from ..contacts import ContactsApi
from ..downloads import DownloadsApi
from ..numbers import NumbersApi
from .output import fail

INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Console:
    """Where a command reads answers to its questions and writes its output."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    inp: TextIO = field(default_factory=lambda: sys.stdin)

    def confirm(self, question: str, *, assume_yes: bool) -> bool:
        """Ask ``question`` on stderr, true only for an answer of y or yes (``assume_yes``:
        without asking). End of input is a no: nothing is spent unasked."""
        if assume_yes:
            return True
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        answer = self.inp.readline()
        if not answer or not self.inp.isatty():  # no echo of an answer ended the line
            self.err.write("\n")
        return answer.strip().lower() in {"y", "yes"}


@dataclass(frozen=True, slots=True)
class Session:
    """What a command works with: the three scripts' clients and the console."""

    numbers: NumbersApi
    downloads: DownloadsApi
    contacts: ContactsApi
    console: Console
    settings: Settings


Handler = Callable[[Session, argparse.Namespace], Awaitable[int]]


def run_command(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """Run the handler the parsed ``args`` name; the process's exit code."""
    console = console or Console()
    try:
        settings = load_settings(os.environ if environ is None else environ)
        problems = settings.http_api.problems()
        if problems:
            raise ConfigError("GATEWAY_HTTP_API: " + "; ".join(problems))
    except ConfigError as exc:
        return fail(exc, err=console.err)
    configure_logging(settings.log.level if args.verbose else "CRITICAL", console.err)
    try:
        return asyncio.run(_run(args.handler, args, settings, console))
    except KeyboardInterrupt:
        console.err.write("\nsmsc-gateway: interrupted\n")
        return INTERRUPTED


async def _run(
    handler: Handler, args: argparse.Namespace, settings: Settings, console: Console
) -> int:
    metrics = HttpApiMetrics(Metrics())
    async with SmscHttpClient(settings.http_api, metrics) as client:
        caller = ScriptCaller(client, settings.http_api.limit_window_seconds)
        session = Session(
            NumbersApi(caller), DownloadsApi(caller), ContactsApi(caller), console, settings
        )
        try:
            return await handler(session, args)
        except GatewayError as exc:
            return fail(exc, err=console.err)
