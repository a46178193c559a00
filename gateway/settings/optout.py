"""The ``optout`` section (``GATEWAY_OPTOUT_*``): keywords, what the blacklist entry blocks,
the consumer group, how long handled SMS are remembered and how provider errors are retried."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.errors import ConfigError

# phones.php add_black ``type`` (seed 004): 0 all messages, 1 mass mailings, 2 single ones.
BLACKLIST_TYPES = (0, 1, 2)


@dataclass(frozen=True, slots=True)
class OptOutSettings:
    """Off while ``keywords`` is empty."""

    # Whole-text keywords, matched ignoring case, spaces and punctuation around them.
    keywords: tuple[str, ...] = ()
    # What the blacklist entry blocks: mass mailings by default, so the subscriber still gets
    # the single messages (codes, notices) a service sends them.
    blacklist_type: int = 1
    group_id: str = "smsc-gateway-optout"
    # Opt-outs published this far back are read at start: an incoming SMS among them is not
    # acted on again when it is consumed a second time.
    remember_seconds: float = 604800.0
    # Bounds the memory of handled SMS (16 bytes an entry); the oldest go first.
    max_remembered: int = 1_000_000
    # Error 9, 4, a circuit open or no answer: tried again from this, doubling to the max.
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    fetch_max_records: int = 100

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError("; ".join(found))

    @property
    def enabled(self) -> bool:
        return bool(self.keywords)

    def problems(self) -> list[str]:
        found = []
        if self.blacklist_type not in BLACKLIST_TYPES:
            found.append("blacklist_type must be 0 (all), 1 (mass mailings) or 2 (single)")
        if any(not k.strip() for k in self.keywords):
            found.append("keywords must not be empty")
        if self.max_remembered < 1 or self.fetch_max_records < 1:
            found.append("max_remembered and fetch_max_records must be positive")
        names = [f.name for f in dataclasses.fields(self) if f.name.endswith("_seconds")]
        found += [f"{name} must be positive" for name in names if getattr(self, name) <= 0]
        return found
