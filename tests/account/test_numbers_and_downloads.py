"""receive_phones.php and downloads.php: the clients against the simulator, errors included,
and the simulator's answers in every fmt as seed 000 shows them."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
import pytest

from gateway.account.downloads import DownloadTask, TaskRef, TaskStatus, TaskWaitError
from gateway.http_api.circuit import CircuitState
from gateway.http_api.errors import (
    AuthorisationError,
    NothingFoundError,
    ParametersError,
    RentUnaffordableError,
    TooManyRequestsError,
)
from gateway.simulator.downloads import FAILED
from tests.account.accountkit import MemorySink, account, raw_call, raw_xml

FREE = "79010000001"
# The simulator's "minute" long enough that requests made one after another on a busy
# machine all fall in it.
SLOW_MINUTE = {"window_seconds": 30.0}


# -- receive_phones.php ----------------------------------------------------------------------


async def test_available_numbers_then_buy_one_and_stop_its_renewal() -> None:
    async with account() as a:
        offered = {n.phone: n for n in await a.numbers.available()}
        assert set(offered) == {"79010000001", "79010000002", "79010000003"}
        number = offered[FREE]
        assert (number.type, number.cost, number.info) == (1, Decimal("300.00"), "MTS, SMS")
        assert Decimal(0) < number.current_cost <= number.cost
        before = a.sim.centre.balances["gateway"]

        assert await a.numbers.buy(FREE) == number.current_cost
        assert a.sim.centre.balances["gateway"] == before - number.current_cost
        assert FREE not in {n.phone for n in await a.numbers.available()}
        [rented] = await a.numbers.rented()
        assert (rented.phone, rented.prolong, rented.cost) == (FREE, True, Decimal("300.00"))

        await a.numbers.set_prolong(FREE, False)
        assert [n.prolong for n in await a.numbers.rented()] == [False]
        assert a.sim.numbers.rented[FREE].noprolong


async def test_buying_refusals_are_typed_and_do_not_park_the_credentials_sends() -> None:
    async with account({"balance": Decimal("5.00")}) as a:
        with pytest.raises(RentUnaffordableError) as poor:
            await a.numbers.buy(FREE)
        assert poor.value.code == 3
        assert a.client.circuit.state(time.monotonic()) is CircuitState.CLOSED
        with pytest.raises(ParametersError):
            await a.numbers.buy("79990000000")  # not offered
        with pytest.raises(ParametersError):
            await a.numbers.set_prolong(FREE, True)  # not rented


async def test_two_identical_requests_a_minute_the_caller_waits_the_simulator_refuses() -> None:
    async with account() as a:
        started = time.monotonic()
        for _ in range(3):
            await a.numbers.available()
        assert time.monotonic() - started >= 1.0, "the third identical request waited a window"
        assert not [k for k in a.sim.stats.errors if k[1] == 9]


async def test_a_third_identical_receive_phones_request_is_refused() -> None:
    async with account(SLOW_MINUTE) as a:
        answers = [orjson.loads(await raw_call(a.sim, "receive_phones", get="1")) for _ in range(3)]
        assert [isinstance(x, list) for x in answers] == [True, True, False]
        assert answers[2] == {"error": "duplicate request, wait a minute", "error_code": 9}
        with pytest.raises(TooManyRequestsError):
            await a.client.call("receive_phones", {"get": "1"})


async def test_wrong_credentials_give_error_2_on_every_account_script() -> None:
    async with account(password="wrong") as a:
        with pytest.raises(AuthorisationError):
            await a.numbers.available()
        assert a.client.circuit.state(time.monotonic()) is CircuitState.OPEN


async def test_receive_phones_answers_in_every_fmt_as_the_seed_shows() -> None:
    async with account() as a:
        text = await raw_call(a.sim, "receive_phones", "0", get="1")
        first = text.splitlines()[0]
        assert first.startswith("phone = 79010000001, type = 1, cost = 300.00, current_cost = ")
        assert first.endswith(", info = MTS, SMS")
        assert (await raw_call(a.sim, "receive_phones", "1", get="1")).startswith(
            "79010000001,1,300.00,"
        )
        await asyncio.sleep(1.05)  # fmt does not make a request different: a new minute
        xml = await raw_xml(a.sim, "receive_phones", get="1")
        assert xml.tag == "list"
        assert next(e.findtext("phone") for e in xml.iter("receive_phone")) == FREE
        bought = await raw_call(a.sim, "receive_phones", "0", buy="1", phone=FREE)
        assert bought.startswith("cost = ")
        assert (
            await raw_call(a.sim, "receive_phones", "1", chg="1", phone=FREE, noprolong="1") == "OK"
        )
        changed = await raw_call(a.sim, "receive_phones", "2", chg="1", phone=FREE, noprolong="0")
        assert changed == "<result>OK</result>"
        assert await raw_call(a.sim, "receive_phones", "1", buy="1", phone=FREE) == "0,-1"


# -- downloads.php ---------------------------------------------------------------------------

CSV = "id;phone;status\n" + "".join(f"{i};7900000{i:04d};1\n" for i in range(2000))


async def test_tasks_listed_with_status_words_and_a_completed_file_streamed() -> None:
    async with account() as a:
        done = a.sim.downloads.add_task("gateway", "may", CSV.encode())
        a.sim.downloads.add_task("gateway", "june", b"x", pending_seconds=60)
        a.sim.downloads.add_task("other", "theirs", b"y")
        tasks = await a.downloads.tasks()
        assert [(t.name, t.status.words) for t in tasks] == [
            ("may", "completed"),
            ("june", "pending"),
        ]
        assert tasks[0].file == done.file
        assert tasks[0].created
        assert tasks[0].time
        assert tasks[1].time == ""
        sink = MemorySink()
        assert await a.downloads.fetch(TaskRef(task_id=done.task_id), sink) == len(CSV)
        assert sink.data == CSV.encode()
        assert sink.total == len(CSV)
        by_name = MemorySink()
        await a.downloads.fetch(TaskRef(name="may"), by_name)
        assert by_name.data == CSV.encode()
        assert [t.name for t in await a.downloads.tasks(after_id=done.task_id, count=1)] == ["june"]


async def test_a_file_not_ready_or_unknown_is_error_5() -> None:
    async with account() as a:
        pending = a.sim.downloads.add_task("gateway", "later", b"x", pending_seconds=60)
        with pytest.raises(NothingFoundError) as not_ready:
            await a.downloads.fetch(TaskRef(task_id=pending.task_id), MemorySink())
        assert not_ready.value.code == 5
        with pytest.raises(NothingFoundError):
            await a.downloads.fetch(TaskRef(name="nothing"), MemorySink())
        answer = orjson.loads(await raw_call(a.sim, "downloads", get_file="1", id="999"))
        assert answer["error_code"] == 5


async def test_waiting_for_a_task_follows_it_to_completed_or_to_failure() -> None:
    async with account() as a:
        task = a.sim.downloads.add_task("gateway", "slow", b"a;b\n", pending_seconds=600)
        seen: list[TaskStatus] = []

        def said(polled: DownloadTask) -> None:
            if not seen:  # it was pending: start it now, for longer than a poll interval
                a.sim.downloads.reschedule(task.task_id, run_seconds=2.0)
            seen.append(polled.status)

        done = await a.downloads.wait(
            TaskRef(task_id=task.task_id), poll_seconds=0.1, timeout_seconds=20, on_status=said
        )
        assert done.status is TaskStatus.COMPLETED
        assert seen[0] is TaskStatus.PENDING
        assert TaskStatus.RUNNING in seen
        failing = a.sim.downloads.add_task("gateway", "bad", b"", run_seconds=0.1, outcome=FAILED)
        with pytest.raises(TaskWaitError, match="execution error"):
            await a.downloads.wait(TaskRef(name="bad"), poll_seconds=0.1, timeout_seconds=10)
        with pytest.raises(TaskWaitError, match="not found"):
            await a.downloads.wait(
                TaskRef(task_id=failing.task_id + 1), poll_seconds=0.1, timeout_seconds=1
            )
        a.sim.downloads.add_task("gateway", "never", b"", pending_seconds=600)
        with pytest.raises(TaskWaitError, match="still pending"):
            await a.downloads.wait(TaskRef(name="never"), poll_seconds=0.2, timeout_seconds=0.5)


async def test_downloads_allows_three_identical_requests_a_minute() -> None:
    async with account(SLOW_MINUTE) as a:
        a.sim.downloads.add_task("gateway", "t", b"z")
        answers = [orjson.loads(await raw_call(a.sim, "downloads", get_list="1")) for _ in range(4)]
        assert [isinstance(x, list) for x in answers] == [True, True, True, False]
        assert answers[3]["error_code"] == 9


async def test_the_caller_waits_out_the_minute_on_downloads() -> None:
    async with account() as a:
        for _ in range(4):
            await a.downloads.tasks()
        assert a.sim.stats.requests["downloads"] == 4
        assert a.sim.stats.errors[("downloads", 9)] == 0


async def test_downloads_list_in_every_fmt() -> None:
    async with account() as a:
        a.sim.downloads.add_task("gateway", "t", b"z")
        line = await raw_call(a.sim, "downloads", "0", get_list="1")
        assert line.startswith("id = 1, name = t, status = 2, created = ")
        assert line.endswith(", file = messages_1.csv")
        assert (await raw_call(a.sim, "downloads", "1", get_list="1", cnt="5")).startswith("1,t,2,")
        xml = await raw_xml(a.sim, "downloads", get_list="1", cnt="1")
        assert [e.findtext("status") for e in xml.iter("task")] == ["2"]
        assert await raw_call(a.sim, "downloads", "1", get_file="1", id="9") == "0,-5"


async def test_waiting_polls_again_when_another_process_used_up_the_minute() -> None:
    # The provider counts refused requests too: our window must be the longer (as 60 s and
    # 60 s + 5% + 0.25 s are), or polls that come too early keep the window full.
    async with account({"window_seconds": 3.0}, limit_window_seconds=3.0) as a:
        a.sim.downloads.add_task("gateway", "t", b"ok", pending_seconds=0.5)
        for _ in range(3):
            await raw_call(a.sim, "downloads", get_list="1")
        done = await a.downloads.wait(TaskRef(name="t"), poll_seconds=0.1, timeout_seconds=30)
        assert done.status is TaskStatus.COMPLETED
        assert a.sim.stats.errors[("downloads", 9)] >= 1
