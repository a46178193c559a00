"""The operator's account commands: ``smsc-gateway numbers``, ``downloads`` and ``contacts``.

Each prints a readable table by default and JSON with ``--json``; a provider's refusal is one
line on stderr and exit code 1 (2 for a wrong command line or configuration); spending money
(renting a number, renewing it) asks first unless ``--yes``. The credential is the HTTP API's
(``GATEWAY_HTTP_API_LOGIN`` and ``_PASSWORD``, or ``_APIKEY``), like the roles'.
"""

from __future__ import annotations

from . import contacts_cmd, downloads_cmd, numbers_cmd
from .args import Commands
from .session import run_command

COMMANDS = ("numbers", "downloads", "contacts")


def register(commands: Commands) -> None:
    """Add the account commands to ``smsc-gateway``'s subcommands."""
    numbers_cmd.register(commands)
    downloads_cmd.register(commands)
    contacts_cmd.register(commands)


__all__ = ["COMMANDS", "register", "run_command"]
