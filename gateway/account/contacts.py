"""Contacts, groups and the blacklist: phones.php.

Sources (docs/account.md has the table): the parameters from seed 004 [DOC]; the commands
(``add``, ``chg``, ``del``, ``add_group``, ``chg_group``, ``del_group``, ``move_group`` 1/2/3)
from the provider's contact_actions page [DOC]; ``get``, ``get_group``, ``add_black``,
``del_black`` and the fmt=3 answers (``{"id": N}`` on creating, ``{"result": "OK"}`` on a
change, lists of objects with ``phone`` and ``name`` / ``id`` and ``name``) from the public
node-smsc client's tests [3P]; the errors from the contact_answer page [DOC]: 1 parameters,
2 credentials, 3 no records found, 4 IP blocked, 5 operation failed, 9 more than three
identical requests a minute. The other fields of a contact (``int_id`` [DOC seed 004],
``grp``, ``lnm``...), a group's ``num`` and ``type``, and a blacklist entry's ``phone``,
``type`` and ``time`` beside its ``id`` [DOC seed 004] are read when present.

A list that comes back "no records found" (3) is an empty list here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from gateway.http_api.errors import NothingFoundError

from .calls import ScriptCaller, as_int, as_text, expect_ok, record_id, records, unexpected

SCRIPT = "phones"
# A contact's fields besides phone, name and grp (seed 004), as the CLI names them.
DETAIL_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "lnm": "last_name",
        "fnm": "first_name",
        "mnm": "middle_name",
        "bd": "birthday",
        "myid": "my_id",
        "cmt": "comment",
        "tags": "tags",
        "pho": "other_phones",
    }
)
# The most records one get or get_black answers (seed 004: cnt at most 1000).
MAX_COUNT = 1000


class BlacklistType(IntEnum):
    """Seed 004, ``type`` of add_black: what the blacklist entry blocks."""

    ALL = 0
    MASS = 1
    SINGLE = 2

    @property
    def words(self) -> str:
        return ("all messages", "mass mailings", "single messages")[self]


class GroupMove(IntEnum):
    """``move_group`` (contact_actions page): move to the group, add it, remove it."""

    MOVE = 1
    ADD = 2
    REMOVE = 3


@dataclass(frozen=True, slots=True)
class Contact:
    int_id: int | None
    phone: str
    name: str
    groups: tuple[int, ...] = ()
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Group:
    group_id: int
    name: str
    num: str = ""
    type: int = 0


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    entry_id: int
    phone: str
    type: int | None = None
    time: str = ""


def parse_contacts(document: Any) -> list[Contact]:
    found = []
    for item in records(SCRIPT, document):
        if not item.get("phone"):
            raise unexpected(SCRIPT, item)
        details = {k: as_text(item[k]) for k in DETAIL_FIELDS if item.get(k) not in (None, "")}
        found.append(
            Contact(
                as_int(item.get("int_id")),
                str(item["phone"]),
                as_text(item.get("name")),
                _group_ids(item.get("grp")),
                MappingProxyType(details),
            )
        )
    return found


def parse_groups(document: Any) -> list[Group]:
    found = []
    for item in records(SCRIPT, document):
        group_id = as_int(item.get("id"))
        if group_id is None:
            raise unexpected(SCRIPT, item)
        group_type = as_int(item.get("type")) or 0
        found.append(
            Group(group_id, as_text(item.get("name")), as_text(item.get("num")), group_type)
        )
    return found


def parse_blacklist(document: Any) -> list[BlacklistEntry]:
    found = []
    for item in records(SCRIPT, document):
        entry_id = as_int(item.get("id"))
        if entry_id is None:
            raise unexpected(SCRIPT, item)
        found.append(
            BlacklistEntry(
                entry_id,
                as_text(item.get("phone")),
                as_int(item.get("type")),
                as_text(item.get("time")),
            )
        )
    return found


def _group_ids(value: Any) -> tuple[int, ...]:
    parts = value if isinstance(value, list) else str(value or "").split(",")
    ids = (as_int(p) for p in parts if str(p).strip())
    return tuple(i for i in ids if i is not None)


class ContactsApi:
    """phones.php through ``caller`` (limits and concurrency kept there). Creating a record
    is not resent after a lost answer (it would be made twice); reads, ``add_black`` (the
    same phone again is the same entry) and changes to given values are."""

    def __init__(self, caller: ScriptCaller) -> None:
        self._caller = caller

    async def add(
        self,
        phones: list[str],
        name: str,
        *,
        groups: tuple[int, ...] = (),
        details: Mapping[str, str] | None = None,
    ) -> int:
        params = {"add": "1", "phone": ",".join(phones), "name": name, **(details or {})}
        if groups:
            params["grp"] = ",".join(str(g) for g in groups)
        return record_id(SCRIPT, await self._caller.call(SCRIPT, params, resend=False))

    async def get(
        self,
        *,
        search: str | None = None,
        fio: str | None = None,
        after_id: int | None = None,
        count: int | None = None,
    ) -> list[Contact]:
        optional = {"search": search, "fio": fio, "after_id": after_id, "cnt": count}
        params = {"get": "1"} | {k: str(v) for k, v in optional.items() if v is not None}
        return parse_contacts(await self._listing(params))

    async def change(
        self,
        phone: str,
        *,
        new_phone: str | None = None,
        name: str | None = None,
        groups: tuple[int, ...] | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        params = {"chg": "1", "phone": phone, **(details or {})}
        if new_phone:
            params["new_phone"] = new_phone
        if name is not None:
            params["name"] = name
        if groups is not None:
            params["grp"] = ",".join(str(g) for g in groups)
        await self._change(params)

    async def delete(self, phone: str) -> None:
        await self._change({"del": "1", "phone": phone}, resend=False)

    async def add_group(self, name: str, *, num: str | None = None, mails: bool = False) -> int:
        params = {"add_group": "1", "name": name, "type": "1" if mails else "0"}
        if num:
            params["num"] = num
        return record_id(SCRIPT, await self._caller.call(SCRIPT, params, resend=False))

    async def groups(self) -> list[Group]:
        return parse_groups(await self._listing({"get_group": "1"}))

    async def change_group(self, group_id: int, name: str, *, num: str | None = None) -> None:
        params = {"chg_group": "1", "grp": str(group_id), "name": name}
        if num is not None:
            params["num"] = num
        await self._change(params)

    async def delete_group(self, group_id: int) -> None:
        await self._change({"del_group": "1", "grp": str(group_id)}, resend=False)

    async def move(self, phone: str, group_id: int, how: GroupMove = GroupMove.MOVE) -> None:
        params = {"move_group": str(int(how)), "grp": str(group_id), "phone": phone}
        await self._change(params)

    async def add_black(self, phone: str, block: BlacklistType = BlacklistType.ALL) -> int:
        params = {"add_black": "1", "phone": phone, "type": str(int(block))}
        return record_id(SCRIPT, await self._caller.call(SCRIPT, params, resend=True))

    async def blacklist(
        self, *, prev_id: int | None = None, count: int | None = None
    ) -> list[BlacklistEntry]:
        params = {"get_black": "1"}
        if prev_id is not None:
            params["prev_id"] = str(prev_id)
        if count is not None:
            params["cnt"] = str(count)
        return parse_blacklist(await self._listing(params))

    async def delete_black(self, phone: str) -> None:
        await self._change({"del_black": "1", "phone": phone}, resend=False)

    async def _listing(self, params: dict[str, str]) -> Any:
        try:
            return await self._caller.call(SCRIPT, params, resend=True)
        except NothingFoundError:
            return []

    async def _change(self, params: dict[str, str], *, resend: bool = True) -> None:
        expect_ok(SCRIPT, await self._caller.call(SCRIPT, params, resend=resend))
