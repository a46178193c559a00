"""Kannel (Debian's ``kannel`` package) as a peer: bearerbox + smsbox in front of the simulator.

:class:`Kannel` writes a configuration into a temporary directory and runs ``bearerbox``
and ``smsbox`` from it: one SMPP transceiver bind (``group = smsc``, ``smsc = smpp``) to the
simulator with ``max-pending-submits`` as the window and no ``throughput`` (no rate limit of
its own), the sendsms HTTP interface on a local port, logs at warning level into the
directory and the consoles quiet (``-v 4``), no delivery reports requested; with ``store``,
bearerbox's file store (every message written before smsbox is told it is accepted),
without it messages queue in memory only.

:func:`sendsms_load` sends one ``GET /cgi-bin/sendsms`` per message over a few keep-alive
connections; :func:`sent` reads how many messages bearerbox has had answered by the SMSC
(``status.xml``).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import aiohttp

from bench.benchkit import free_port

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
# sendsms user and admin password of a Kannel listening on loopback only, for this run
USER = PASSWORD = "bench"  # noqa: S105
TEXT = "Benchmark message"
SOURCE = "Bench"

CONFIG = """\
group = core
admin-port = {admin}
admin-password = {password}
status-password = {password}
admin-allow-ip = "127.0.0.1"
smsbox-port = {boxes}
box-allow-ip = "127.0.0.1"
log-level = 2
log-file = "{dir}/bearerbox.log"
dlr-storage = internal
{store}
group = smsc
smsc = smpp
smsc-id = simulator
host = 127.0.0.1
port = {smpp_port}
transceiver-mode = true
smsc-username = {system_id}
smsc-password = {smpp_password}
system-type = "bench"
max-pending-submits = {window}
source-addr-ton = 5
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1
enquire-link-interval = 30

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {boxes}
sendsms-port = {sendsms}
log-level = 2
log-file = "{dir}/smsbox.log"

group = sendsms-user
username = {user}
password = {password}
max-messages = 1

group = sms-service
keyword = default
text = "No service"
"""

# With a store, bearerbox writes every message it accepts to a file before acknowledging it
# to smsbox, and removes it once the SMSC took it: Kannel's own durability.
STORE = """\
store-type = file
store-location = "{dir}/kannel.store"
"""


@dataclass(frozen=True, slots=True)
class Ports:
    admin: int
    boxes: int
    sendsms: int


def installed() -> bool:
    return BEARERBOX.exists() and SMSBOX.exists()


class Kannel:
    """bearerbox and smsbox bound to the SMSC at ``smpp_port``; a context manager."""

    def __init__(
        self, smpp_port: int, system_id: str, smpp_password: str, window: int, *, store: bool
    ) -> None:
        self.ports = Ports(free_port(), free_port(), free_port())
        self._dir = tempfile.TemporaryDirectory(prefix="bench-kannel-")
        self.config = Path(self._dir.name) / "kannel.conf"
        self.config.write_text(
            CONFIG.format(
                admin=self.ports.admin,
                boxes=self.ports.boxes,
                sendsms=self.ports.sendsms,
                password=PASSWORD,
                user=USER,
                dir=self._dir.name,
                smpp_port=smpp_port,
                system_id=system_id,
                smpp_password=smpp_password,
                window=window,
                store=STORE.format(dir=self._dir.name) if store else "",
            )
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def start(self) -> None:
        self.processes.append(self._spawn(BEARERBOX))
        await self._until(lambda status: "<status>online" in status, "bearerbox's SMPP bind")
        self.processes.append(self._spawn(SMSBOX))
        await self._until(lambda status: "<type>smsbox</type>" in status, "smsbox")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self._dir.cleanup()

    async def __aenter__(self) -> Kannel:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, program: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(program), "-v", "4", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def _until(self, ready: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if ready(await status_xml(self.ports.admin)):
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"Kannel: {what} not up within 30 s (logs in {self._dir.name})")


async def status_xml(admin_port: int) -> str:
    url = f"http://127.0.0.1:{admin_port}/status.xml?password={PASSWORD}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


SENT = re.compile(r"<sms>\s*<received>.*?</received>\s*<sent><total>(\d+)</total>", re.S)


async def sent(admin_port: int) -> int:
    """Messages bearerbox has had accepted by the SMSC (submit_sm_resp ESME_ROK)."""
    found = SENT.search(await status_xml(admin_port))
    assert found is not None, "no <sms><sent><total> in status.xml"
    return int(found.group(1))


async def sendsms_load(port: int, phones: Iterable[str], connections: int = 32) -> int:
    """One sendsms request per phone over ``connections`` keep-alive connections; returns
    how many were not answered 202 Accepted."""
    queue = iter(phones)
    refused = 0

    async def connection() -> None:
        nonlocal refused
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for phone in queue:
                writer.write(_request(phone))
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                refused += not head.startswith(b"HTTP/1.1 202")
                if re.search(rb"(?i)connection: *close", head):
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return refused


def _request(phone: str) -> bytes:
    query = (
        f"username={USER}&password={PASSWORD}&from={SOURCE}&to={quote(phone)}&text={quote(TEXT)}"
    )
    return f"GET /cgi-bin/sendsms?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
