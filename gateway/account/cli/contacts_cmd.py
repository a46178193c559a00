"""``smsc-gateway contacts``: the account's contacts, their groups and the blacklist.

Contacts: ``add``, ``get`` (``--search``, ``--fio``, paging with ``--after-id``), ``change``,
``delete``. ``groups``: ``add``, ``get``, ``change``, ``delete``, ``move`` (a contact into a
group, ``--add`` one more group, ``--remove`` from one). ``blacklist``: ``add`` (``--type``
all, mass or single messages), ``get`` (paging back with ``--prev-id``), ``delete``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..contacts import DETAIL_FIELDS, BlacklistEntry, BlacklistType, Contact, Group, GroupMove
from .args import Commands, choice, command, group, phone, positive
from .output import show
from .session import Session

# The CLI's option names of a contact's other fields (phones.php names in DETAIL_FIELDS).
_DETAIL_OPTIONS = {
    "lnm": "--last-name",
    "fnm": "--first-name",
    "mnm": "--middle-name",
    "bd": "--birthday",
    "myid": "--my-id",
    "cmt": "--comment",
    "tags": "--tags",
    "pho": "--other-phones",
}
_BLOCKS = {"all": BlacklistType.ALL, "mass": BlacklistType.MASS, "single": BlacklistType.SINGLE}
CONTACT_COLUMNS = ["id", "phone", "name", "groups", "details"]


def register(commands: Commands) -> None:
    contacts = group(commands, "contacts", "contacts, groups and the blacklist (phones.php)")
    _contact_commands(contacts)
    _group_commands(group(contacts, "groups", "contact groups"))
    _blacklist_commands(group(contacts, "blacklist", "the account's blacklist"))


def _contact_commands(contacts: Commands) -> None:
    add = command(contacts, "add", add_contact, "add a contact for each phone given")
    add.add_argument("phones", nargs="+", type=phone, metavar="PHONE", help="its phone(s)")
    add.add_argument("--name", required=True, help="the contact's name")
    add.add_argument("--group", type=positive, action="append", default=[], help="a group id")
    _detail_options(add)
    get = command(contacts, "get", get_contacts, "find contacts")
    get.add_argument("--search", help="part of the name or of the phone number")
    get.add_argument("--fio", help="last, first and/or middle name")
    get.add_argument("--after-id", type=positive, help="the page after this contact id")
    get.add_argument("--count", type=positive, help="at most this many (up to 1000)")
    change = command(contacts, "change", change_contact, "change a contact, found by phone")
    change.add_argument("phone", type=phone, metavar="PHONE", help="the contact's phone")
    change.add_argument("--new-phone", type=phone, help="its new phone number")
    change.add_argument("--name", help="its new name")
    change.add_argument("--group", type=positive, action="append", help="its groups (all of them)")
    _detail_options(change)
    delete = command(contacts, "delete", delete_contact, "delete a contact, found by phone")
    delete.add_argument("phone", type=phone, metavar="PHONE", help="the contact's phone")


def _group_commands(groups: Commands) -> None:
    add = command(groups, "add", add_group, "create a group")
    add.add_argument("name", help="the group's name")
    add.add_argument("--num", help="the group's number for sending to it")
    add.add_argument("--mails", action="store_true", help="a group of e-mail addresses")
    command(groups, "get", get_groups, "list the groups")
    change = command(groups, "change", change_group, "rename a group")
    change.add_argument("group_id", type=positive, metavar="ID", help="the group's id")
    change.add_argument("name", help="its new name")
    change.add_argument("--num", help="the group's new number")
    delete = command(groups, "delete", delete_group, "delete a group")
    delete.add_argument("group_id", type=positive, metavar="ID", help="the group's id")
    move = command(groups, "move", move_contact, "put a contact into a group (only that one)")
    move.add_argument("phone", type=phone, metavar="PHONE", help="the contact's phone")
    move.add_argument("group_id", type=positive, metavar="GROUP", help="the group's id")
    how = move.add_mutually_exclusive_group()
    how.add_argument(
        "--add",
        dest="how",
        action="store_const",
        const=GroupMove.ADD,
        default=GroupMove.MOVE,
        help="add this group, keep the others",
    )
    how.add_argument(
        "--remove",
        dest="how",
        action="store_const",
        const=GroupMove.REMOVE,
        help="take the contact out of this group",
    )


def _blacklist_commands(blacklist: Commands) -> None:
    add = command(blacklist, "add", add_black, "put a phone on the blacklist")
    add.add_argument("phone", type=phone, metavar="PHONE")
    add.add_argument(
        "--type",
        dest="block",
        type=choice(dict(_BLOCKS)),
        default=0,
        metavar="{all,mass,single}",
        help="what it blocks (all messages)",
    )
    get = command(blacklist, "get", get_black, "list the blacklist, newest first")
    get.add_argument("--prev-id", type=positive, help="the page of entries before this id")
    get.add_argument("--count", type=positive, help="at most this many (up to 1000)")
    delete = command(blacklist, "delete", delete_black, "take a phone off the blacklist")
    delete.add_argument("phone", type=phone, metavar="PHONE")


def _detail_options(parser: argparse.ArgumentParser) -> None:
    for key, option in _DETAIL_OPTIONS.items():
        parser.add_argument(
            option,
            dest=f"detail_{key}",
            help=f"the contact's {DETAIL_FIELDS[key].replace('_', ' ')}",
        )


def _details(args: argparse.Namespace) -> dict[str, str]:
    found = {key: getattr(args, f"detail_{key}") for key in _DETAIL_OPTIONS}
    return {key: value for key, value in found.items() if value is not None}


# -- contacts --------------------------------------------------------------------------------


async def add_contact(session: Session, args: argparse.Namespace) -> int:
    contact_id = await session.contacts.add(
        args.phones, args.name, groups=tuple(args.group), details=_details(args)
    )
    row = {"id": contact_id, "phones": args.phones, "name": args.name}
    show(row, ["id", "phones", "name"], as_json=args.json, out=session.console.out)
    return 0


async def get_contacts(session: Session, args: argparse.Namespace) -> int:
    found = await session.contacts.get(
        search=args.search, fio=args.fio, after_id=args.after_id, count=args.count
    )
    rows = [_contact(c) for c in found]
    show(rows, CONTACT_COLUMNS, as_json=args.json, out=session.console.out, empty="no contacts")
    return 0


async def change_contact(session: Session, args: argparse.Namespace) -> int:
    groups = tuple(args.group) if args.group is not None else None
    await session.contacts.change(
        args.phone,
        new_phone=args.new_phone,
        name=args.name,
        groups=groups,
        details=_details(args),
    )
    return _done(session, args, {"phone": args.new_phone or args.phone, "changed": True})


async def delete_contact(session: Session, args: argparse.Namespace) -> int:
    await session.contacts.delete(args.phone)
    return _done(session, args, {"phone": args.phone, "deleted": True})


# -- groups ----------------------------------------------------------------------------------


async def add_group(session: Session, args: argparse.Namespace) -> int:
    group_id = await session.contacts.add_group(args.name, num=args.num, mails=args.mails)
    return _done(session, args, {"id": group_id, "name": args.name})


async def get_groups(session: Session, args: argparse.Namespace) -> int:
    rows = [_group(g) for g in await session.contacts.groups()]
    columns = ["id", "name", "num", "kind"]
    show(rows, columns, as_json=args.json, out=session.console.out, empty="no groups")
    return 0


async def change_group(session: Session, args: argparse.Namespace) -> int:
    await session.contacts.change_group(args.group_id, args.name, num=args.num)
    return _done(session, args, {"id": args.group_id, "name": args.name})


async def delete_group(session: Session, args: argparse.Namespace) -> int:
    await session.contacts.delete_group(args.group_id)
    return _done(session, args, {"id": args.group_id, "deleted": True})


async def move_contact(session: Session, args: argparse.Namespace) -> int:
    how: GroupMove = args.how
    await session.contacts.move(args.phone, args.group_id, how)
    return _done(
        session, args, {"phone": args.phone, "group": args.group_id, how.name.lower(): True}
    )


# -- blacklist -------------------------------------------------------------------------------


async def add_black(session: Session, args: argparse.Namespace) -> int:
    block = BlacklistType(args.block)
    entry_id = await session.contacts.add_black(args.phone, block)
    return _done(session, args, {"id": entry_id, "phone": args.phone, "blocks": block.words})


async def get_black(session: Session, args: argparse.Namespace) -> int:
    entries = await session.contacts.blacklist(prev_id=args.prev_id, count=args.count)
    rows = [_entry(e) for e in entries]
    columns = ["id", "phone", "blocks", "added"]
    show(rows, columns, as_json=args.json, out=session.console.out, empty="the blacklist is empty")
    return 0


async def delete_black(session: Session, args: argparse.Namespace) -> int:
    await session.contacts.delete_black(args.phone)
    return _done(session, args, {"phone": args.phone, "deleted": True})


def _done(session: Session, args: argparse.Namespace, row: dict[str, Any]) -> int:
    show(row, list(row), as_json=args.json, out=session.console.out)
    return 0


def _contact(contact: Contact) -> dict[str, Any]:
    details = {DETAIL_FIELDS[k]: v for k, v in contact.details.items()}
    return {
        "id": contact.int_id,
        "phone": contact.phone,
        "name": contact.name,
        "groups": list(contact.groups),
        "details": details,
    }


def _group(group: Group) -> dict[str, Any]:
    kind = "e-mail" if group.type == 1 else "phones"
    return {"id": group.group_id, "name": group.name, "num": group.num, "kind": kind}


def _entry(entry: BlacklistEntry) -> dict[str, Any]:
    blocks = BlacklistType(entry.type).words if entry.type in set(BlacklistType) else entry.type
    return {"id": entry.entry_id, "phone": entry.phone, "blocks": blocks, "added": entry.time}
