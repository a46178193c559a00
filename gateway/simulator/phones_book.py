"""One login's contacts, groups and blacklist, as the simulated phones.php keeps them (no I/O).

Every operation answers a value or an :class:`~.http_api_centre.ApiError`: 1 for parameters
that do not make sense, 3 for a record that does not exist ("no records found", the
provider's contact_answer page), 5 for an operation that cannot be done (a contact that
already exists). Ids are the provider's kind: numbers the service assigns, unique across
logins (``int_id`` of a contact, ``id`` of a group and of a blacklist entry).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .http_api_centre import ApiError
from .http_api_messages import valid_phone

# The contact fields phones.php takes besides phone, name and grp (seed 004).
DETAILS = ("lnm", "fnm", "mnm", "bd", "myid", "cmt", "tags", "pho")
# move_group: 1 moves the contact to the group, 2 adds the group, 3 removes it (contact page).
MOVE, ADD_GROUP, REMOVE_GROUP = 1, 2, 3
# Blacklist types (seed 004): 0 all messages, 1 mass mailings, 2 single messages.
BLOCK_ALL = 0
BLACKLIST_TYPES = (BLOCK_ALL, 1, 2)
_SEPARATORS = re.compile(r"[^0-9+]+")

NO_RECORDS = ApiError(3, "no records found")


@dataclass(slots=True)
class SimContact:
    int_id: int
    phone: str
    name: str
    groups: list[int]
    details: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        grp = ",".join(str(g) for g in self.groups)
        head = {"int_id": self.int_id, "phone": self.phone, "name": self.name, "grp": grp}
        return head | {k: self.details.get(k, "") for k in DETAILS}

    def matches(self, search: str, fio: str) -> bool:
        names = " ".join(self.details.get(k, "") for k in ("lnm", "fnm", "mnm")).lower()
        found = not search or search.lower() in self.name.lower() or search in self.phone
        return found and (not fio or all(part in names for part in fio.lower().split()))


@dataclass(slots=True)
class SimGroup:
    group_id: int
    name: str
    num: str
    type: int

    def fields(self) -> dict[str, Any]:
        return {"id": self.group_id, "name": self.name, "num": self.num, "type": self.type}


@dataclass(frozen=True, slots=True)
class SimBlacklisted:
    entry_id: int
    phone: str
    type: int
    added: str

    def fields(self) -> dict[str, Any]:
        return {"id": self.entry_id, "phone": self.phone, "type": self.type, "time": self.added}


def phones_of(raw: str) -> list[str]:
    """A list of phones "separated by any separator" (seed 004), ``+`` optional."""
    return [p.lstrip("+") for p in _SEPARATORS.split(raw) if p.strip("+")]


class PhoneBook:
    """See the module docstring. ``next_id`` hands out the service's ids; ``now`` says when,
    as the provider writes dates."""

    def __init__(self, next_id: Callable[[], int], now: Callable[[], str]) -> None:
        self._next_id = next_id
        self._now = now
        self.contacts: dict[str, SimContact] = {}
        self.groups: dict[int, SimGroup] = {}
        self.blacklist: dict[str, SimBlacklisted] = {}

    # -- contacts --------------------------------------------------------------------------

    def add_contacts(
        self, phones: list[str], name: str, groups: list[int], details: Mapping[str, str]
    ) -> int | ApiError:
        """One contact per phone, all with ``name``; the first one's ``int_id``."""
        if not phones or not all(valid_phone(p) for p in phones):
            return ApiError(1)
        if any(g not in self.groups for g in groups):
            return NO_RECORDS
        if any(p in self.contacts for p in phones):
            return ApiError(5, "the contact already exists")
        added = [SimContact(self._next_id(), p, name, list(groups), dict(details)) for p in phones]
        self.contacts.update((c.phone, c) for c in added)
        return added[0].int_id

    def find_contacts(self, search: str, fio: str, after_id: int, count: int) -> list[SimContact]:
        """Contacts matching ``search`` (name or phone) and ``fio`` (every word in the last,
        first or middle name), ``int_id`` after ``after_id``, at most ``count``."""
        found = [
            c
            for c in sorted(self.contacts.values(), key=lambda c: c.int_id)
            if c.int_id > after_id and c.matches(search, fio)
        ]
        return found[:count]

    def change_contact(
        self, phone: str, changes: Mapping[str, str], groups: list[int] | None = None
    ) -> ApiError | None:
        """``changes``: new_phone, name and the other fields; ``groups``: all of its groups."""
        contact = self.contacts.get(phone)
        if contact is None or any(g not in self.groups for g in groups or ()):
            return NO_RECORDS
        if groups is not None:
            contact.groups = list(groups)
        new_phone = changes.get("new_phone", "")
        if new_phone:
            if not valid_phone(new_phone) or new_phone in self.contacts:
                return ApiError(1)
            contact.phone = new_phone
            self.contacts[new_phone] = self.contacts.pop(phone)
        contact.name = changes.get("name", contact.name)
        contact.details |= {k: v for k, v in changes.items() if k in DETAILS}
        return None

    def delete_contact(self, phone: str) -> ApiError | None:
        return None if self.contacts.pop(phone, None) else NO_RECORDS

    # -- groups ----------------------------------------------------------------------------

    def add_group(self, name: str, num: str, group_type: int) -> int | ApiError:
        if not name or group_type not in (0, 1):
            return ApiError(1)
        group = SimGroup(self._next_id(), name, num, group_type)
        self.groups[group.group_id] = group
        return group.group_id

    def find_groups(self, group_type: int | None) -> list[SimGroup]:
        groups = sorted(self.groups.values(), key=lambda g: g.group_id)
        return [g for g in groups if group_type is None or g.type == group_type]

    def change_group(self, group_id: int, name: str, num: str | None) -> ApiError | None:
        group = self.groups.get(group_id)
        if group is None:
            return NO_RECORDS
        group.name = name or group.name
        group.num = group.num if num is None else num
        return None

    def delete_group(self, group_id: int) -> ApiError | None:
        if self.groups.pop(group_id, None) is None:
            return NO_RECORDS
        for contact in self.contacts.values():
            contact.groups = [g for g in contact.groups if g != group_id]
        return None

    def move(self, group_id: int, phone: str, mode: int) -> ApiError | None:
        contact = self.contacts.get(phone)
        if contact is None or group_id not in self.groups:
            return NO_RECORDS
        if mode == MOVE:
            contact.groups = [group_id]
        elif mode == ADD_GROUP:
            contact.groups = [*(g for g in contact.groups if g != group_id), group_id]
        elif mode == REMOVE_GROUP:
            contact.groups = [g for g in contact.groups if g != group_id]
        else:
            return ApiError(1)
        return None

    # -- blacklist -------------------------------------------------------------------------

    def add_black(self, phone: str, block_type: int) -> int | ApiError:
        """The entry's id; a phone already listed keeps its entry (its type updated), so
        adding it again changes nothing else: the call is idempotent."""
        if not valid_phone(phone) or block_type not in BLACKLIST_TYPES:
            return ApiError(1)
        entry = self.blacklist.get(phone)
        if entry is None:
            entry = SimBlacklisted(self._next_id(), phone, block_type, self._now())
        else:
            entry = SimBlacklisted(entry.entry_id, phone, block_type, entry.added)
        self.blacklist[phone] = entry
        return entry.entry_id

    def find_blacklisted(self, prev_id: int | None, count: int) -> list[SimBlacklisted]:
        """Newest first; with ``prev_id``, only entries added before that one."""
        entries = sorted(self.blacklist.values(), key=lambda e: e.entry_id, reverse=True)
        earlier = [e for e in entries if prev_id is None or e.entry_id < prev_id]
        return earlier[:count]

    def delete_black(self, phone: str) -> ApiError | None:
        return None if self.blacklist.pop(phone, None) else NO_RECORDS
