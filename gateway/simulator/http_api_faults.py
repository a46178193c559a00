"""Faults a test injects into the running HTTP API simulator (``sim.faults``).

Each fault applies to the scripts given (send.php by default), to the next ``count``
requests (every one while ``count`` is None), from the simulator's event loop:

- :meth:`HttpApiFaults.delay_responses`: the request is judged at once and its answer waits
  ``seconds``: a client that times out has had its message accepted (the ambiguous send).
- :meth:`HttpApiFaults.delay_processing`: the request is registered on arrival (an identical
  one gets error 9 from then on) but judged ``seconds`` later, so status.php does not know it
  yet.
- :meth:`HttpApiFaults.fail_requests`: answer an HTTP status (503 by default) instead,
  after judging the request when ``processed`` (the provider did it, the answer says not).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Fault:
    value: float
    remaining: int | None
    scripts: frozenset[str]
    processed: bool = False


class HttpApiFaults:
    """The fault switches read by every request."""

    def __init__(self) -> None:
        self._faults: dict[str, _Fault] = {}

    def delay_responses(
        self, seconds: float, *, count: int | None = None, scripts: tuple[str, ...] = ("send",)
    ) -> None:
        self._set("response", seconds, count, scripts)

    def delay_processing(
        self, seconds: float, *, count: int | None = None, scripts: tuple[str, ...] = ("send",)
    ) -> None:
        self._set("processing", seconds, count, scripts)

    def fail_requests(
        self,
        status: int = 503,
        *,
        count: int | None = None,
        processed: bool = False,
        scripts: tuple[str, ...] = ("send",),
    ) -> None:
        self._set("status", float(status), count, scripts, processed=processed)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, kind: str, script: str) -> tuple[float, bool] | None:
        """The fault of ``kind`` for one request of ``script`` (value, processed), if any."""
        fault = self._faults.get(kind)
        if fault is None or script not in fault.scripts:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[kind]
        return fault.value, fault.processed

    def _set(
        self,
        kind: str,
        value: float,
        count: int | None,
        scripts: tuple[str, ...],
        *,
        processed: bool = False,
    ) -> None:
        if value < 0 or (count is not None and count < 1):
            raise ValueError("a fault needs a non-negative value and a positive count")
        if value == 0:
            self._faults.pop(kind, None)
            return
        self._faults[kind] = _Fault(value, count, frozenset(scripts), processed)
