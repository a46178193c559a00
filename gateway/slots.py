"""Setting a slotted dataclass's fields without its ``__init__``, for the per-message paths.

A frozen dataclass's ``__init__`` binds its keywords and calls ``object.__setattr__`` for each
field; the send path builds a few objects per message (the usual request, a fetched record, a
SUBMIT_SM and its numbered copy), where setting the slots' own descriptors directly costs
about half as much. Each user holds the result equal to ``__init__``'s in its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

SlotSetter = Callable[[object, object], None]


def slot_setters(cls: type, names: Sequence[str]) -> tuple[SlotSetter, ...]:
    """The setters of ``cls``'s slots ``names`` (declared on ``cls`` or a base), in order."""
    setters: list[SlotSetter] = []
    for name in names:
        owner = next((k for k in cls.__mro__ if name in getattr(k, "__slots__", ())), None)
        if owner is None:
            raise LookupError(f"{cls.__name__} has no slot {name}")
        setters.append(owner.__dict__[name].__set__)
    return tuple(setters)
