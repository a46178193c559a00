"""The docs name every setting the code reads, so the reference cannot silently fall behind."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from gateway.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = (DOCS / "configuration.md").read_text()
    hints = typing.get_type_hints(Settings)
    names = [
        f"GATEWAY_{section.name.upper()}_{item.name.upper()}"
        for section in dataclasses.fields(Settings)
        for item in dataclasses.fields(hints[section.name])
    ]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"undocumented settings: {missing}"
