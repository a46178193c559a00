"""``/sys/phones.php``, simulated: contacts, groups and the blacklist.

Commands as the provider's contacts pages give them (seed 004 for the parameters; the
contact_actions page for the commands; its contact_answer page for the errors; the fmt=3
answers as the public node-smsc client's tests read them, docs/account.md has the sources):

==============================================  =============================================
``add=1&phone=&name=[&grp=&lnm=...]``           a contact per phone; ``{"id": <int_id>}``
``get=1[&search=&fio=&after_id=&cnt=]``         contacts; a list of ``int_id``, ``phone``,
                                                ``name``, ``grp`` and the other fields
``chg=1&phone=[&new_phone=&name=...]``          ``{"result": "OK"}``
``del=1&phone=``                                ``{"result": "OK"}``
``add_group=1&name=[&num=&type=]``              ``{"id": <id>}``
``get_group=1[&type=]``                         a list of ``id``, ``name``, ``num``, ``type``
``chg_group=1&grp=&name=[&num=]``               ``{"result": "OK"}``
``del_group=1&grp=``                            ``{"result": "OK"}``
``move_group=1|2|3&grp=&phone=``                move to / add / remove a group; ``OK``
``add_black=1&phone=[&type=0|1|2]``             ``{"id": <id>}``; again for a listed phone:
                                                the same id (idempotent)
``get_black=1[&prev_id=&cnt=]``                 newest first: ``id``, ``phone``, ``type``,
                                                ``time``
``del_black=1&phone=``                          ``{"result": "OK"}``
==============================================  =============================================

Errors: 1 parameters, 3 no records found (a list with nothing in it too), 5 an operation that
cannot be done, 9 a fourth identical request within the minute. ``cnt`` is at most 1000.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.settings.simulator_accounts import AccountScriptsSettings

from .http_api_centre import ApiError
from .http_api_scripts import IdenticalRequests, ScriptReply, render_id, render_items, render_ok
from .phones_book import BLOCK_ALL, DETAILS, NO_RECORDS, PhoneBook, phones_of

Params = Mapping[str, str]


class PhonesScript:
    """See the module docstring; ``books`` holds each login's :class:`PhoneBook`."""

    name = "phones"

    def __init__(
        self,
        config: AccountScriptsSettings,
        *,
        window_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        blacklist: tuple[str, ...] = (),
    ) -> None:
        self._config = config
        self._listed_from_start = tuple(p.lstrip("+") for p in blacklist)
        self._wall_clock = wall_clock
        self._identical = IdenticalRequests(
            config.phones_identical_per_window, window_seconds, clock
        )
        self._ids = itertools.count(1001)
        self.books: dict[str, PhoneBook] = {}
        self._commands: dict[str, Callable[[PhoneBook, Params, int], ScriptReply | ApiError]] = {
            "add": self._add,
            "get": self._get,
            "chg": self._change,
            "del": self._delete,
            "add_group": self._add_group,
            "get_group": self._get_group,
            "chg_group": self._change_group,
            "del_group": self._delete_group,
            "move_group": self._move,
            "add_black": self._add_black,
            "get_black": self._get_black,
            "del_black": self._delete_black,
        }

    def book(self, login: str) -> PhoneBook:
        """The login's book; a new one starts with the configured blacklist (all messages)."""
        book = self.books.get(login)
        if book is None:
            book = self.books[login] = PhoneBook(lambda: next(self._ids), self._date)
            for phone in self._listed_from_start:
                book.add_black(phone, BLOCK_ALL)
        return book

    def blacklisted(self, login: str, phone: str) -> bool:
        """Whether ``phone`` is on the login's blacklist, whatever the entry's type: the
        blacklist wait_call.php refuses (error 5) is this one."""
        return phone.lstrip("+") in self.book(login).blacklist

    def answer(self, login: str, params: Params, fmt: int) -> ScriptReply | ApiError:
        if self._identical.refused(login, params):
            return ApiError(9, "duplicate request, wait a minute")
        named = [c for c in self._commands if params.get(c, "0") not in {"", "0"}]
        if len(named) != 1:
            return ApiError(1)
        return self._commands[named[0]](self.book(login), params, fmt)

    def _add(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        groups = _ids(params.get("grp", ""))
        if groups is None:
            return ApiError(1)
        details = {k: params[k] for k in DETAILS if k in params}
        phones = phones_of(params.get("phone", ""))
        return _created(fmt, book.add_contacts(phones, params.get("name", ""), groups, details))

    def _get(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        after, count = _number(params.get("after_id", "0")), self._count(params)
        if after is None or count is None:
            return ApiError(1)
        found = book.find_contacts(params.get("search", ""), params.get("fio", ""), after, count)
        return _listed(fmt, [c.fields() for c in found], "contact")

    def _change(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        phone = params.get("phone", "").lstrip("+")
        changes = {k: v.lstrip("+") if k == "new_phone" else v for k, v in params.items()}
        groups = _ids(params["grp"]) if "grp" in params else None
        if "grp" in params and groups is None:
            return ApiError(1)
        return _done(fmt, book.change_contact(phone, changes, groups))

    def _delete(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        return _done(fmt, book.delete_contact(params.get("phone", "").lstrip("+")))

    def _add_group(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        group_type = _number(params.get("type", "0"))
        if group_type is None:
            return ApiError(1)
        return _created(
            fmt, book.add_group(params.get("name", ""), params.get("num", ""), group_type)
        )

    def _get_group(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        raw = params.get("type")
        group_type = _number(raw) if raw is not None else None
        if raw is not None and group_type is None:
            return ApiError(1)
        return _listed(fmt, [g.fields() for g in book.find_groups(group_type)], "group")

    def _change_group(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        group_id = _number(params.get("grp", ""))
        if group_id is None:
            return ApiError(1)
        return _done(fmt, book.change_group(group_id, params.get("name", ""), params.get("num")))

    def _delete_group(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        group_id = _number(params.get("grp", ""))
        return ApiError(1) if group_id is None else _done(fmt, book.delete_group(group_id))

    def _move(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        group_id, mode = _number(params.get("grp", "")), _number(params["move_group"])
        if group_id is None or mode is None:
            return ApiError(1)
        phone = params.get("phone", "").lstrip("+")
        return _done(fmt, book.move(group_id, phone, mode))

    def _add_black(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        block_type = _number(params.get("type", "0"))
        if block_type is None:
            return ApiError(1)
        return _created(fmt, book.add_black(params.get("phone", "").lstrip("+"), block_type))

    def _get_black(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        raw = params.get("prev_id")
        prev_id, count = (_number(raw) if raw else None), self._count(params)
        if (raw and prev_id is None) or count is None:
            return ApiError(1)
        return _listed(fmt, [e.fields() for e in book.find_blacklisted(prev_id, count)], "black")

    def _delete_black(self, book: PhoneBook, params: Params, fmt: int) -> ScriptReply | ApiError:
        return _done(fmt, book.delete_black(params.get("phone", "").lstrip("+")))

    def _count(self, params: Params) -> int | None:
        count = _number(params.get("cnt", str(self._config.default_list_count)))
        return count if count is not None and 0 < count <= self._config.max_list_count else None

    def _date(self) -> str:
        return datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%d.%m.%Y %H:%M:%S")


def _created(fmt: int, result: int | ApiError) -> ScriptReply | ApiError:
    return result if isinstance(result, ApiError) else render_id(fmt, result)


def _done(fmt: int, problem: ApiError | None) -> ScriptReply | ApiError:
    return problem if problem is not None else render_ok(fmt)


def _listed(fmt: int, items: list[dict[str, Any]], element: str) -> ScriptReply | ApiError:
    return render_items(fmt, items, element) if items else NO_RECORDS


def _number(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def _ids(raw: str) -> list[int] | None:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) else None
