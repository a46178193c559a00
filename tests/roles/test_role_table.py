"""One table says which settings sections each role needs; every role of the command has an
entry, and a role refuses to start with the problems of its sections, all named at once."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.cli import ROLES
from gateway.errors import ConfigError
from gateway.settings import ROLE_SECTIONS, Settings, require_role, role_problems


def test_every_role_of_the_command_has_its_sections() -> None:
    assert set(ROLES) == set(ROLE_SECTIONS)
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert all(sections <= fields for sections in ROLE_SECTIONS.values())


def test_all_needs_what_the_sender_and_the_correlator_need() -> None:
    assert ROLE_SECTIONS["sender"] | ROLE_SECTIONS["correlator"] == ROLE_SECTIONS["all"]


@pytest.mark.parametrize(
    ("role", "problem"),
    [
        ("sender", "GATEWAY_SMPP: system_id is required"),
        ("receiver", "GATEWAY_SMPP: system_id is required"),
        ("ingress", "GATEWAY_INGRESS: secret is required"),
        ("poller", "GATEWAY_HTTP_API: set apikey, or login and password"),
    ],
)
def test_a_role_does_not_start_with_a_problem_of_its_sections(role: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        require_role(Settings(), role)


@pytest.mark.parametrize("role", ["correlator", "simulate"])
def test_roles_without_credentials_start_on_defaults(role: str) -> None:
    assert role_problems(Settings(), {role}) == []
    require_role(Settings(), role)
