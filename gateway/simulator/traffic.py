"""Incoming SMS made up by configuration, so ``smsc-gateway simulate`` shows the receiving
path without a test driving it (``GATEWAY_SIMULATOR_INCOMING_*``)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from types import MappingProxyType

from gateway.settings.simulator import SimulatorSettings

from .incoming import IncomingSpec

# One sample per coding, each with characters only that coding carries well: GSM extension
# characters, Latin-1 accents, Cyrillic.
_SAMPLES: Mapping[str, str] = MappingProxyType(
    {
        "auto": "Yes, please deliver order {n} tomorrow",
        "gsm": "Order {n}: yes {{confirm}} [price 10€] ~ thanks",
        "latin1": "Oui, commande {n} reçue à 15h, merci beaucoup ¡olé!",
        "ucs2": "Да, заказ {n} подтверждаю, спасибо ✓",
    }
)
# Long enough that every coding needs several parts (153 GSM characters, 67 UCS2 per part).
_LONG_REPEAT = 6
_BINARY_SIZE = (20, 400)


class IncomingTraffic:
    """Picks the next made-up incoming message: its sender, coding, length and concatenation,
    drawn from the configured mix with ``rng``."""

    def __init__(self, config: SimulatorSettings, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._count = 0

    def next_message(self) -> IncomingSpec:
        """The next message, to ``incoming_number`` from a random Russian mobile number."""
        self._count += 1
        rng, config = self._rng, self._config
        coding = rng.choice(config.incoming_codings)
        long = rng.random() < config.incoming_long_share
        source = f"79{rng.randrange(10**9):09d}"
        text: str | bytes
        if coding == "binary":
            low, high = _BINARY_SIZE
            text = rng.randbytes(rng.randrange(low, high) if long else low)
        else:
            sample = _SAMPLES[coding].format(n=self._count)
            text = " ".join([sample] * _LONG_REPEAT) if long else sample
        concat = rng.choice(config.incoming_concat)
        return IncomingSpec(source, config.incoming_number, text, coding, concat)
