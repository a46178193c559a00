"""Whether Kafka takes writes now, for ``/readyz`` (no I/O; the caller passes the time).

Every publish reports its outcome; when none succeeded for a while, a probe (a metadata
request to the brokers) stands in. Ready means: the latest signal was a success, and it is
recent. A failed publish makes the ingress unready at once; a later successful publish or
probe makes it ready again. A metadata answer does not prove that writes with acks=all
succeed (too few in-sync replicas still refuse them), so a publish failure after a good probe
turns readiness off again.

While failing, the ingress answers 503 without handing the event to the producer: during a
long outage every retry of the provider would otherwise add a record to the producer's
buffer, each sent (a duplicate) once Kafka is back. The prober ends that state.
"""

from __future__ import annotations


class WriteHealth:
    """Signals about Kafka writes, and the readiness they add up to."""

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        # Not ready until a first publish or probe succeeded.
        self._last_ok: float | None = None
        self._failing = True
        self._last_problem = "no write or probe has succeeded yet"

    def succeeded(self, now: float) -> None:
        self._last_ok = now
        self._failing = False

    def failed(self, problem: str) -> None:
        self._failing = True
        self._last_problem = problem

    @property
    def failing(self) -> bool:
        """True from a failed publish or probe until the next success."""
        return self._failing

    def needs_probe(self, now: float) -> bool:
        """Whether the prober should ask the brokers (nothing recent says they are fine)."""
        return self._failing or self._last_ok is None or now - self._last_ok >= self._interval

    def ready(self, now: float) -> tuple[bool, str]:
        """(ready, why) for /readyz; stale after three probe intervals without a success."""
        if self._failing or self._last_ok is None:
            return False, f"kafka not writable: {self._last_problem}"
        age = now - self._last_ok
        if age > 3 * self._interval:
            return False, f"kafka not confirmed writable for {age:.0f} s"
        return True, "kafka writable"
