"""phones.php: contacts, groups and the blacklist, the client against the simulator."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.account.contacts import BlacklistType, GroupMove
from gateway.account.downloads import TaskRef
from gateway.http_api.errors import (
    BlacklistedError,
    NothingFoundError,
    OperationFailedError,
    ParametersError,
)
from gateway.settings.simulator_desk import CallDeskSettings
from tests.account.accountkit import MemorySink, account, raw_call, raw_xml

PHONE = "79001112233"


async def test_contacts_added_found_changed_and_deleted() -> None:
    async with account() as a:
        first = await a.contacts.add(
            [PHONE, "+79001112244"],
            "Ivan",
            details={"lnm": "Petrov", "fnm": "Ivan", "cmt": "VIP"},
        )
        await a.contacts.add(["79005556677"], "Maria", details={"lnm": "Sidorova"})
        everyone = await a.contacts.get()
        assert [(c.phone, c.name) for c in everyone] == [
            (PHONE, "Ivan"),
            ("79001112244", "Ivan"),
            ("79005556677", "Maria"),
        ]
        assert everyone[0].int_id == first
        assert dict(everyone[0].details) == {"lnm": "Petrov", "fnm": "Ivan", "cmt": "VIP"}
        assert [c.phone for c in await a.contacts.get(search="Mar")] == ["79005556677"]
        assert [c.phone for c in await a.contacts.get(search="1112244")] == ["79001112244"]
        assert [c.name for c in await a.contacts.get(fio="petrov ivan")] == ["Ivan", "Ivan"]
        page = await a.contacts.get(after_id=first, count=1)
        assert [c.phone for c in page] == ["79001112244"]
        assert await a.contacts.get(search="nobody") == []

        await a.contacts.change(PHONE, new_phone="79009998877", name="Ivan P.")
        changed = (await a.contacts.get(search="Ivan P."))[0]
        assert (changed.phone, changed.int_id) == ("79009998877", first)
        await a.contacts.delete("79009998877")
        assert len(await a.contacts.get()) == 2


async def test_contact_errors_are_typed() -> None:
    async with account() as a:
        with pytest.raises(NothingFoundError) as missing:
            await a.contacts.change(PHONE, name="x")
        assert missing.value.code == 3
        with pytest.raises(NothingFoundError):
            await a.contacts.delete(PHONE)
        with pytest.raises(ParametersError):
            await a.contacts.add(["12"], "too short")
        await a.contacts.add([PHONE], "Ivan")
        with pytest.raises(OperationFailedError) as twice:
            await a.contacts.add([PHONE], "Ivan again")
        assert twice.value.code == 5
        with pytest.raises(ParametersError):
            await a.contacts.get(count=1001)


async def test_groups_added_listed_renamed_moved_between_and_deleted() -> None:
    async with account() as a:
        await a.contacts.add([PHONE], "Ivan")
        clients = await a.contacts.add_group("Clients", num="7")
        staff = await a.contacts.add_group("Staff")
        mails = await a.contacts.add_group("Newsletter", mails=True)
        groups = await a.contacts.groups()
        assert [(g.group_id, g.name, g.num, g.type) for g in groups] == [
            (clients, "Clients", "7", 0),
            (staff, "Staff", "", 0),
            (mails, "Newsletter", "", 1),
        ]
        await a.contacts.move(PHONE, clients)
        await a.contacts.move(PHONE, staff, GroupMove.ADD)
        assert (await a.contacts.get())[0].groups == (clients, staff)
        await a.contacts.move(PHONE, clients, GroupMove.REMOVE)
        assert (await a.contacts.get())[0].groups == (staff,)
        await a.contacts.move(PHONE, clients, GroupMove.MOVE)
        assert (await a.contacts.get())[0].groups == (clients,)
        await a.contacts.change(PHONE, groups=(clients, staff))
        assert (await a.contacts.get())[0].groups == (clients, staff)
        await a.contacts.move(PHONE, clients)
        await a.contacts.change_group(clients, "Customers")
        assert (await a.contacts.groups())[0].name == "Customers"
        await a.contacts.delete_group(clients)
        assert (await a.contacts.get())[0].groups == ()
        with pytest.raises(NothingFoundError):
            await a.contacts.move(PHONE, clients)
        with pytest.raises(NothingFoundError):
            await a.contacts.delete_group(clients)


async def test_blacklist_add_is_idempotent_get_pages_back_with_prev_id_delete() -> None:
    async with account() as a:
        ids = [await a.contacts.add_black(f"7900000000{i}", BlacklistType.MASS) for i in range(5)]
        assert await a.contacts.add_black("79000000002", BlacklistType.ALL) == ids[2]
        newest = await a.contacts.blacklist(count=2)
        assert [e.phone for e in newest] == ["79000000004", "79000000003"]
        assert newest[0].type == BlacklistType.MASS
        assert newest[0].time
        older = await a.contacts.blacklist(prev_id=newest[-1].entry_id)
        assert [e.entry_id for e in older] == [ids[2], ids[1], ids[0]]
        assert older[0].type == BlacklistType.ALL
        await a.contacts.delete_black("79000000004")
        assert [e.phone for e in await a.contacts.blacklist(count=1)] == ["79000000003"]
        with pytest.raises(NothingFoundError):
            await a.contacts.delete_black("79000000004")
        assert await a.contacts.blacklist(prev_id=ids[0]) == []


async def test_wait_call_refuses_the_phones_on_the_blacklist_phones_php_keeps() -> None:
    configured = "79007770000"
    async with account({"calls": CallDeskSettings(blacklist=(configured,))}) as a:
        # Listed through phones.php, of any type: wait_call.php answers error 5.
        for block in BlacklistType:
            await a.contacts.add_black(PHONE, block)
            with pytest.raises(BlacklistedError):
                await a.client.wait_call(PHONE)
        await a.contacts.delete_black(PHONE)
        assert (await a.client.wait_call(PHONE)).call_to
        # Listed by configuration: phones.php shows it, and deleting it lets the call through.
        listed = await a.contacts.blacklist()
        assert [(e.phone, e.type) for e in listed] == [(configured, BlacklistType.ALL)]
        with pytest.raises(BlacklistedError):
            await a.client.wait_call(configured)
        await a.contacts.delete_black(configured)
        assert (await a.client.wait_call(configured)).call_to


async def test_three_identical_requests_a_minute_and_the_other_fmts() -> None:
    async with account({"window_seconds": 30.0}) as a:
        answers = [
            orjson.loads(await raw_call(a.sim, "phones", add_black="1", phone=PHONE))
            for _ in range(4)
        ]
        assert answers[:3] == [answers[0]] * 3
        assert "id" in answers[0]
        assert answers[3]["error_code"] == 9
        assert await raw_call(a.sim, "phones", "0", add_group="1", name="G") == "ID = 1002"
        assert await raw_call(a.sim, "phones", "1", add="1", phone=PHONE, name="N") == "1003"
        assert await raw_call(a.sim, "phones", "1", del_black="1", phone=PHONE) == "OK"
        assert await raw_call(a.sim, "phones", "1", del_black="1", phone=PHONE) == "0,-3"
        xml = await raw_xml(a.sim, "phones", get_group="1")
        assert [e.findtext("name") for e in xml.iter("group")] == ["G"]
        line = await raw_call(a.sim, "phones", "0", get="1")
        assert line.startswith("int_id = 1003, phone = 79001112233, name = N, grp = ")
        assert (await raw_call(a.sim, "phones", "3", get="1", cnt="0")) == (
            '{"error":"parameters error","error_code":1}'
        )


async def test_the_caller_keeps_phones_within_three_identical_a_minute() -> None:
    async with account() as a:
        await asyncio.gather(*(a.contacts.add_black(PHONE) for _ in range(5)))
        assert a.sim.stats.errors[("phones", 9)] == 0
        assert a.sim.stats.requests["phones"] == 5


async def test_the_account_scripts_share_the_account_slots() -> None:
    async with account({"processing_seconds": 0.2}, account_concurrency=2) as a:
        sink = MemorySink()
        a.sim.downloads.add_task("gateway", "t", b"x")
        await asyncio.gather(
            *(a.contacts.add_black(f"7900000010{i}") for i in range(4)),
            a.numbers.available(),
            a.downloads.tasks(),
            a.downloads.fetch(TaskRef(task_id=1), sink),
            a.client.get_answers(),
        )
        assert a.sim.stats.peak_in_flight["all"] == 2
        assert not [key for key in a.sim.stats.errors if key[1] == 9]
        assert sink.data == b"x"
