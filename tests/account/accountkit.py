"""Shared by the account tests: the simulator and the account clients wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import httpx

from gateway.account.calls import ScriptCaller
from gateway.account.contacts import ContactsApi
from gateway.account.downloads import DownloadsApi
from gateway.account.numbers import NumbersApi
from gateway.http_api.client import SmscHttpClient
from gateway.simulator.http_api import HttpApiSimulator
from tests.http_api.httpapi_support import FAST, LOGIN, PASSWORD, Wired, wired


@dataclass
class Account:
    wired: Wired
    caller: ScriptCaller
    numbers: NumbersApi
    downloads: DownloadsApi
    contacts: ContactsApi

    @property
    def sim(self) -> HttpApiSimulator:
        return self.wired.sim

    @property
    def client(self) -> SmscHttpClient:
        return self.wired.client


@asynccontextmanager
async def account(
    sim_overrides: dict[str, Any] | None = None, **settings_overrides: Any
) -> AsyncIterator[Account]:
    """The simulator on a 1 s "minute" and the three account clients talking to it."""
    async with wired(sim_overrides, **settings_overrides) as w:
        window = settings_overrides.get("limit_window_seconds", FAST["limit_window_seconds"])
        caller = ScriptCaller(w.client, window)
        yield Account(w, caller, NumbersApi(caller), DownloadsApi(caller), ContactsApi(caller))


async def raw_call(sim: HttpApiSimulator, script: str, fmt: str = "3", **params: str) -> str:
    """One request straight to the simulator, past every limit of ours: its answer's text."""
    data = {"login": LOGIN, "psw": PASSWORD, "fmt": fmt, "charset": "utf-8", **params}
    async with httpx.AsyncClient() as raw:
        response = await raw.post(f"{sim.base_url}/sys/{script}.php", data=data)
    assert response.status_code == 200
    return response.text


async def raw_xml(sim: HttpApiSimulator, script: str, **params: str) -> ElementTree.Element:
    """The fmt=2 answer of one request straight to the simulator, parsed."""
    text = await raw_call(sim, script, "2", **params)
    return ElementTree.fromstring(text)  # noqa: S314 - our own simulator's answer


class MemorySink:
    """A DownloadSink keeping the file in memory."""

    def __init__(self) -> None:
        self.total: int | None = -1
        self.chunks: list[bytes] = []

    def begin(self, total_bytes: int | None) -> None:
        self.total = total_bytes

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)
