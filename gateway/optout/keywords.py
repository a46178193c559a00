"""Whether an incoming SMS is an opt-out: its whole text is one of the keywords.

Compared after Unicode compatibility normalisation (NFKC), case folding and removing what
surrounds the word: spaces, punctuation, quotes ("Stop!", " stop. ", "«СТОП»"). A keyword
inside a longer text ("please don't stop") is not an opt-out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Unicode categories stripped around the word: punctuation (P*), symbols (S*), separators.
_AROUND = ("P", "S", "Z")


def normalised(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and _around(folded[start]):
        start += 1
    while end > start and _around(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _around(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in _AROUND


class KeywordMatcher:
    """The configured keyword a text is, if it is one."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self._by_form = {normalised(k): k for k in keywords}
        self._by_form.pop("", None)

    def __bool__(self) -> bool:
        return bool(self._by_form)

    def match(self, text: str) -> str | None:
        return self._by_form.get(normalised(text))
