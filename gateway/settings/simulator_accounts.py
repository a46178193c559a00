"""Settings of the simulator's account scripts: receive_phones.php, downloads.php, phones.php.

The limits are the provider's: no more than two identical receive_phones.php requests a
minute, three for downloads.php (seed 000) and for phones.php (the provider's contacts page,
contact_answer); phones.php lists at most 1000 records a request (seed 004, ``cnt``). The
"minute" is the HTTP API's ``window_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from gateway.errors import ConfigError


class RentableNumber(NamedTuple):
    """A dedicated number the provider rents out (seed 000: phone, type, cost, info)."""

    phone: str
    # 1, 4: a dedicated virtual number; 2: a number on the SIM hosting service.
    type: int = 1
    # For a full month; the first month costs the days left of the current one.
    cost: Decimal = Decimal("300.00")
    info: str = "MTS, SMS"


def _rentable() -> tuple[RentableNumber, ...]:
    return (
        RentableNumber("79010000001", 1, Decimal("300.00"), "MTS, SMS"),
        RentableNumber("79010000002", 1, Decimal("450.00"), "Beeline, SMS"),
        RentableNumber("79010000003", 2, Decimal("900.00"), "MegaFon, SMS, calls"),
    )


@dataclass(frozen=True, slots=True)
class AccountScriptsSettings:
    """What the account scripts offer and how often an identical request is let through."""

    rentable_numbers: tuple[RentableNumber, ...] = _rentable()
    numbers_identical_per_window: int = 2
    downloads_identical_per_window: int = 3
    phones_identical_per_window: int = 3
    # phones.php: the most records one get / get_black answers (seed 004: cnt at most 1000),
    # and how many when the request does not say (not documented: this simulator's choice).
    max_list_count: int = 1000
    default_list_count: int = 100

    def __post_init__(self) -> None:
        limits = (
            self.numbers_identical_per_window,
            self.downloads_identical_per_window,
            self.phones_identical_per_window,
            self.default_list_count,
        )
        if min(limits) < 1 or self.default_list_count > self.max_list_count:
            raise ConfigError("account script limits must be at least 1, default ≤ max count")
