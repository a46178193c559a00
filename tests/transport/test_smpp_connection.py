"""SmppConnection (the asyncio adapter) keeps the session's timers, over real loopback TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.smpp.errors import ResponseTimeoutError
from gateway.smpp.pdu import BindTransceiver
from gateway.smpp.session import Role, Session, SessionConfig, State
from gateway.transport.smpp_connection import SmppConnection


async def _swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer that reads everything and never answers."""
    while await reader.read(65536):
        pass
    writer.close()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _connect(port: int, config: SessionConfig) -> tuple[SmppConnection, asyncio.Task[None]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = Session(Role.ESME, config, asyncio.get_running_loop().time())
    connection = SmppConnection(session, reader, writer, lambda pdu: None)
    return connection, asyncio.create_task(connection.run())


async def test_request_times_out_when_no_other_timer_runs(silent_port: int) -> None:
    # No enquire_link timer and no inactivity cut: the response deadline is the only timer.
    config = SessionConfig(response_timeout_seconds=0.2, enquire_link_interval_seconds=None)
    connection, runner = await _connect(silent_port, config)
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    assert connection.session.outstanding == 0
    connection.abort("done")
    await runner


async def test_response_deadline_earlier_than_the_enquire_link_timer(silent_port: int) -> None:
    config = SessionConfig(response_timeout_seconds=0.2, enquire_link_interval_seconds=60.0)
    connection, runner = await _connect(silent_port, config)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    assert asyncio.get_running_loop().time() - started < 2.0
    connection.abort("done")
    await runner


async def test_unbind_before_bind_does_not_wait_for_an_answer(silent_port: int) -> None:
    connection, runner = await _connect(silent_port, SessionConfig())
    started = asyncio.get_running_loop().time()
    await connection.unbind(timeout_seconds=5.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert connection.closed
    assert connection.session.state is State.CLOSED
    await asyncio.wait_for(runner, 3.0)
