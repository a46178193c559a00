"""The call confirmation's book does no I/O at all, and its steps reach Kafka and the HTTP
API only through Protocols: neither imports a Kafka or HTTP library, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIBRARIES = ("aiokafka", "httpx", "aiohttp", "faust")


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("gateway.callconfirm.book", (*LIBRARIES, "asyncio", "socket", "logging")),
        ("gateway.callconfirm.issuer", LIBRARIES),
        ("gateway.callconfirm.lane", LIBRARIES),
        ("gateway.callconfirm.decider", LIBRARIES),
        ("gateway.http_api.incoming_poll", LIBRARIES),
    ],
)
def test_module_imports_no_io_library(module: str, forbidden: tuple[str, ...]) -> None:
    script = (
        f"import sys; import {module}; "
        f"print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "", f"{module} brings in {found}"
