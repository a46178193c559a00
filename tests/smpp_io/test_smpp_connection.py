"""SmppConnection (the asyncio adapter) keeps the session's timers, over real loopback TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.smpp.codec import FrameDecoder, decode, encode
from gateway.smpp.errors import ConnectionClosedError, ResponseTimeoutError
from gateway.smpp.pdu import BindTransceiver, BindTransceiverResp, EnquireLink, SubmitSm
from gateway.smpp.session import Role, Session, SessionSettings, State
from gateway.smpp_io.smpp_connection import SmppConnection


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


async def _connect(port: int, config: SessionSettings) -> tuple[SmppConnection, asyncio.Task[None]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = Session(Role.ESME, config, asyncio.get_running_loop().time())
    connection = SmppConnection(session, reader, writer, lambda pdu: None)
    return connection, asyncio.create_task(connection.run())


async def test_request_times_out_when_no_other_timer_runs(silent_port: int) -> None:
    # No enquire_link timer and no inactivity cut: the response deadline is the only timer.
    config = SessionSettings(response_timeout_seconds=0.2, enquire_link_interval_seconds=None)
    connection, runner = await _connect(silent_port, config)
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    assert connection.session.outstanding == 0
    connection.abort("done")
    await runner


async def test_response_deadline_earlier_than_the_enquire_link_timer(silent_port: int) -> None:
    config = SessionSettings(response_timeout_seconds=0.2, enquire_link_interval_seconds=60.0)
    connection, runner = await _connect(silent_port, config)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    assert asyncio.get_running_loop().time() - started < 2.0
    connection.abort("done")
    await runner


async def test_unbind_before_bind_does_not_wait_for_an_answer(silent_port: int) -> None:
    connection, runner = await _connect(silent_port, SessionSettings())
    started = asyncio.get_running_loop().time()
    await connection.unbind(timeout_seconds=5.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert connection.closed
    assert connection.session.state is State.CLOSED
    await asyncio.wait_for(runner, 3.0)


class _BindThenSilence:
    """A peer that accepts the bind, then reads everything and answers nothing."""

    def __init__(self) -> None:
        self.enquired = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for pdu in map(decode, decoder.feed(data)):
                if isinstance(pdu, BindTransceiver):
                    writer.write(encode(BindTransceiverResp(sequence_number=pdu.sequence_number)))
                elif isinstance(pdu, EnquireLink):
                    self.enquired.set()
        writer.close()


async def test_a_timeout_and_a_close_in_one_batch_keep_their_own_errors() -> None:
    # The submit's deadline and the unanswered enquire_link's come due in one timer call:
    # the submit timed out (its outcome is unknown), it was not cut off by the close.
    peer = _BindThenSilence()
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    config = SessionSettings(response_timeout_seconds=1.0, enquire_link_interval_seconds=0.1)
    connection, runner = await _connect(server.sockets[0].getsockname()[1], config)
    bind = await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    assert bind.command_status == 0
    submit = asyncio.create_task(connection.request(SubmitSm(destination_addr="79231234567")))
    await asyncio.wait_for(peer.enquired.wait(), 3.0)  # sent 0.1 s after the submit
    # The loop is busy past both deadlines, so one timer call sees both.
    time.sleep(1.2)  # noqa: ASYNC251 - blocking the loop is the point
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(submit, 3.0)
    await asyncio.wait_for(runner, 3.0)
    assert connection.close_reason == "EnquireLink unanswered"
    server.close()
    await server.wait_closed()


async def test_unbind_while_binding_fails_the_bind_at_once(silent_port: int) -> None:
    connection, runner = await _connect(silent_port, SessionSettings())
    bind = asyncio.create_task(connection.request(BindTransceiver(system_id="gw")))
    await asyncio.sleep(0)  # the bind is on its way
    assert connection.session.outstanding == 1
    await asyncio.wait_for(connection.unbind(timeout_seconds=5.0), 1.0)
    with pytest.raises(ConnectionClosedError, match="unbound before bind"):
        await bind
    await asyncio.wait_for(runner, 3.0)


async def test_a_request_cut_off_by_a_close_fails_with_the_close_reason() -> None:
    peer = _BindThenSilence()
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    config = SessionSettings(enquire_link_interval_seconds=None)
    connection, runner = await _connect(server.sockets[0].getsockname()[1], config)
    await asyncio.wait_for(connection.request(BindTransceiver(system_id="gw")), 3.0)
    submit = asyncio.create_task(connection.request(SubmitSm(destination_addr="79231234567")))
    await asyncio.sleep(0)
    connection.abort("shutting down")
    with pytest.raises(ConnectionClosedError, match="shutting down"):
        await submit
    await asyncio.wait_for(runner, 3.0)
    server.close()
    await server.wait_closed()


async def test_ready_only_while_a_request_would_go_at_once(silent_port: int) -> None:
    config = SessionSettings(
        window=1, response_timeout_seconds=0.2, enquire_link_interval_seconds=None
    )
    connection, runner = await _connect(silent_port, config)
    assert connection.ready()
    answer = connection.send_now(BindTransceiver(system_id="gw"))
    assert not connection.ready()  # its window of one is taken
    waiting = asyncio.ensure_future(connection.request(BindTransceiver(system_id="gw")))
    await asyncio.sleep(0)
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(answer, 3.0)  # as request() would have raised
    assert not connection.ready()  # the room went to the request waiting for it
    with pytest.raises(ResponseTimeoutError):
        await asyncio.wait_for(waiting, 3.0)
    assert connection.ready()
    connection.abort("done")
    assert not connection.ready()
    await runner
