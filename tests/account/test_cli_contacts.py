"""``smsc-gateway contacts``: every command run as a process against the simulator, and
``--help`` for every account command."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.account import cli as account_cli
from gateway.cli import main
from gateway.simulator.http_api import HttpApiSimulator
from tests.account.clikit import cli
from tests.http_api.httpapi_support import sim_config

IVAN, MARIA = "79001112233", "79005556677"


@pytest.fixture
async def sim() -> AsyncIterator[HttpApiSimulator]:
    async with HttpApiSimulator(sim_config()) as simulator:
        yield simulator


async def test_contacts_add_get_change_delete(sim: HttpApiSimulator) -> None:
    added = await cli(
        sim, "contacts", "add", IVAN, "+7 900 111-22-44", "--name", "Ivan",
        "--last-name", "Petrov", "--comment", "VIP",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.out.splitlines() == [
        "ID    PHONES                   NAME",
        f"1001  {IVAN},79001112244  Ivan",
    ]
    await cli(sim, "contacts", "add", MARIA, "--name", "Maria")
    shown = await cli(sim, "contacts", "get")
    assert shown.out.splitlines() == [
        "ID    PHONE        NAME   GROUPS  DETAILS",
        f"1001  {IVAN}  Ivan   -       last name: Petrov; comment: VIP",
        "1002  79001112244  Ivan   -       last name: Petrov; comment: VIP",
        f"1003  {MARIA}  Maria  -       -",
    ]
    found = (await cli(sim, "contacts", "get", "--search", "Mar", "--json")).json()
    assert found == [{"id": 1003, "phone": MARIA, "name": "Maria", "groups": [], "details": {}}]
    paged = (
        await cli(sim, "contacts", "get", "--after-id", "1001", "--count", "1", "--json")
    ).json()
    assert isinstance(paged, list)
    assert [c["id"] for c in paged] == [1002]
    assert (await cli(sim, "contacts", "get", "--fio", "petrov", "--json")).json() == [
        {"id": i, "phone": p, "name": "Ivan", "groups": [],
         "details": {"last_name": "Petrov", "comment": "VIP"}}
        for i, p in ((1001, IVAN), (1002, "79001112244"))
    ]  # fmt: skip
    changed = await cli(
        sim, "contacts", "change", IVAN, "--new-phone", "79009990000", "--name", "I."
    )
    assert changed.out.splitlines()[1].split() == ["79009990000", "yes"]
    assert sim.phones.books["gateway"].contacts["79009990000"].name == "I."
    deleted = await cli(sim, "contacts", "delete", MARIA, "--json")
    assert deleted.json() == {"phone": MARIA, "deleted": True}
    assert (await cli(sim, "contacts", "get", "--search", "Maria")).out == "no contacts\n"


async def test_contact_errors_are_one_line(sim: HttpApiSimulator) -> None:
    missing = await cli(sim, "contacts", "delete", IVAN)
    assert (missing.code, missing.out) == (1, "")
    assert missing.err_lines == [
        "smsc-gateway: phones.php refused with error 3: no such record (contact, group or"
        " blacklist entry) (the provider said: no records found)"
    ]
    await cli(sim, "contacts", "add", IVAN, "--name", "Ivan")
    twice = await cli(sim, "contacts", "add", IVAN, "--name", "Ivan")
    assert twice.err_lines == [
        "smsc-gateway: phones.php refused with error 5: the provider could not carry the"
        " operation out (does it exist already?) (the provider said: the contact already exists)"
    ]
    unnamed = await cli(sim, "contacts", "add", IVAN)
    assert unnamed.code == 2
    assert "the following arguments are required: --name" in unnamed.err


async def test_groups_add_get_change_move_delete(sim: HttpApiSimulator) -> None:
    await cli(sim, "contacts", "add", IVAN, "--name", "Ivan")
    added = await cli(sim, "contacts", "groups", "add", "Clients", "--num", "7", "--json")
    assert added.json() == {"id": 1002, "name": "Clients"}
    await cli(sim, "contacts", "groups", "add", "News", "--mails")
    listed = await cli(sim, "contacts", "groups", "get")
    assert listed.out.splitlines() == [
        "ID    NAME     NUM  KIND",
        "1002  Clients  7    phones",
        "1003  News     -    e-mail",
    ]
    moved = await cli(sim, "contacts", "groups", "move", IVAN, "1002")
    assert moved.out.splitlines()[1].split() == [IVAN, "1002", "yes"]
    await cli(sim, "contacts", "groups", "move", IVAN, "1003", "--add")
    assert (await cli(sim, "contacts", "get", "--json")).json()[0]["groups"] == [1002, 1003]  # type: ignore[index]
    await cli(sim, "contacts", "groups", "move", IVAN, "1002", "--remove")
    assert sim.phones.books["gateway"].contacts[IVAN].groups == [1003]
    renamed = await cli(sim, "contacts", "groups", "change", "1003", "Letters")
    assert renamed.out.splitlines()[1].split() == ["1003", "Letters"]
    assert (await cli(sim, "contacts", "groups", "delete", "1002")).code == 0
    gone = await cli(sim, "contacts", "groups", "move", IVAN, "1002")
    assert gone.code == 1
    assert gone.err.startswith("smsc-gateway: phones.php refused with error 3: no such record")


async def test_blacklist_add_get_page_and_delete(sim: HttpApiSimulator) -> None:
    assert (await cli(sim, "contacts", "blacklist", "get")).out == "the blacklist is empty\n"
    added = await cli(sim, "contacts", "blacklist", "add", IVAN, "--type", "mass")
    assert added.out.splitlines() == ["ID    PHONE        BLOCKS", f"1001  {IVAN}  mass mailings"]
    await cli(sim, "contacts", "blacklist", "add", MARIA)
    await cli(sim, "contacts", "blacklist", "add", "79001234567", "--type", "single")
    listed = (await cli(sim, "contacts", "blacklist", "get", "--json")).json()
    assert isinstance(listed, list)
    assert [(e["phone"], e["blocks"]) for e in listed] == [
        ("79001234567", "single messages"),
        (MARIA, "all messages"),
        (IVAN, "mass mailings"),
    ]
    older = await cli(sim, "contacts", "blacklist", "get", "--prev-id", "1002")
    assert [line.split()[:2] for line in older.out.splitlines()] == [
        ["ID", "PHONE"],
        ["1001", IVAN],
    ]
    assert (await cli(sim, "contacts", "blacklist", "delete", IVAN)).code == 0
    assert IVAN not in sim.phones.books["gateway"].blacklist
    wrong_type = await cli(sim, "contacts", "blacklist", "add", IVAN, "--type", "some")
    assert wrong_type.code == 2
    assert "'some' is not one of all, mass, single" in wrong_type.err


def command_paths() -> Iterator[list[str]]:
    """Every account command and subcommand, as its words on the command line."""
    parser = argparse.ArgumentParser(prog="smsc-gateway")
    account_cli.register(parser.add_subparsers())

    def walk(node: argparse.ArgumentParser, path: list[str]) -> Iterator[list[str]]:
        yield path
        for action in node._actions:  # argparse lists subcommands only here
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, [*path, name])

    for path in walk(parser, []):
        if path:
            yield path


def test_every_account_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(command_paths())
    assert len(paths) == (1 + 4) + (1 + 2) + (1 + 4) + (1 + 5) + (1 + 3)
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0
        shown = capsys.readouterr().out
        assert shown.startswith(f"usage: smsc-gateway {' '.join(path)} ")
        assert "options:" in shown
