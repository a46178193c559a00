"""What the account commands print: a table for people, JSON for scripts, one-line errors.

Every command builds its answer as rows of plain values (:data:`Row`); :func:`show` prints
them as an aligned table, or with ``--json`` as a JSON array (a single result as an object).
An error is one line on stderr, ``smsc-gateway: <what happened>``; for a provider's error it
says which script refused, its code and what that code means for that script.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TextIO

import orjson

from gateway.errors import ConfigError, GatewayError
from gateway.http_api.errors import CircuitOpenError, HttpTransportError, ProviderApiError

Row = Mapping[str, Any]

# What each provider error code means, by script where the meaning is the script's own
# (seed 000 for receive_phones.php and downloads.php, contact_answer for phones.php).
_MEANINGS: Mapping[int, str] = MappingProxyType(
    {
        1: "error in the parameters",
        2: "wrong login or password, or this IP address is not allowed for the account",
        4: "this IP address is blocked for a while after repeated errors",
        9: "too many identical requests within a minute, or too many at once: try later",
    }
)
_SCRIPT_MEANINGS: Mapping[str, Mapping[int, str]] = MappingProxyType(
    {
        "receive_phones": {
            1: "error in the parameters (is the number free to rent, or rented by you?)",
            3: "not enough money on the account to rent the number",
            9: "more than two identical requests within a minute: try again in a minute",
        },
        "downloads": {
            5: "no such task or file (a task has its file once it is completed)",
            9: "more than three identical requests within a minute: try again in a minute",
        },
        "phones": {
            3: "no such record (contact, group or blacklist entry)",
            5: "the provider could not carry the operation out (does it exist already?)",
            9: "more than three identical requests within a minute: try again in a minute",
        },
    }
)
# Exit codes: 1 the provider (or the network) said no, 2 the command or configuration is wrong.
FAILED = 1
USAGE = 2


def show(
    rows: Sequence[Row] | Row,
    columns: Sequence[str],
    *,
    as_json: bool,
    out: TextIO = sys.stdout,
    empty: str = "nothing found",
) -> None:
    """``rows`` as a table of ``columns`` (the keys, upper-cased as headers), or as JSON."""
    if as_json:
        document = dict(rows) if isinstance(rows, Mapping) else [dict(r) for r in rows]
        out.write(orjson.dumps(document, default=_json_value).decode() + "\n")
        return
    listed = [rows] if isinstance(rows, Mapping) else list(rows)
    if not listed:
        out.write(f"{empty}\n")
        return
    out.write(table(listed, columns))


def table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """An aligned text table; headers are the column names in capitals, ``_`` as spaces."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    headers = [c.upper().replace("_", " ") for c in columns]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def error_line(exc: BaseException) -> str:
    """One line saying what went wrong, for stderr."""
    if isinstance(exc, ProviderApiError):
        meaning = _SCRIPT_MEANINGS.get(exc.script, {}).get(exc.code) or _MEANINGS.get(exc.code)
        said = f" (the provider said: {exc.description})" if exc.description else ""
        return f"{exc.script}.php refused with error {exc.code}: {meaning or 'undocumented'}{said}"
    if isinstance(exc, CircuitOpenError):
        return f"not sent: {exc}"
    if isinstance(exc, HttpTransportError):
        return f"no answer from the provider: {exc}"
    if isinstance(exc, ConfigError):
        return " ".join(str(exc).split())
    return str(exc)


def fail(exc: GatewayError | str, *, err: TextIO = sys.stderr) -> int:
    """Print the error's line; the exit code (2 for configuration, else 1)."""
    text = exc if isinstance(exc, str) else error_line(exc)
    err.write(f"smsc-gateway: {text}\n")
    return USAGE if isinstance(exc, ConfigError) else FAILED


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value) if str(value) != "" else "-"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)
