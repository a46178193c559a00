"""Settings: one module per section of ``GATEWAY_<SECTION>_<FIELD>`` (or per role's group of
sections), the whole they form, and the one place that reads them from the environment
(:mod:`.load`, with the table of the sections each role needs).

The bottom layer of the gateway: these modules import no other package of it but
:mod:`gateway.errors` and the protocol core's constants, so every package can import its
settings from here.
"""

from .kafka import KafkaSettings, TopicSettings
from .load import (
    ROLE_SECTIONS,
    Settings,
    load_settings,
    require_role,
    role_problems,
    setting_names,
    unknown_variable_problems,
)
from .process import HttpSettings, LogSettings
from .receiver import ReceiverSettings
from .sender import SenderSettings, Transport
from .smpp import SmppSettings

__all__ = [
    "ROLE_SECTIONS",
    "HttpSettings",
    "KafkaSettings",
    "LogSettings",
    "ReceiverSettings",
    "SenderSettings",
    "Settings",
    "SmppSettings",
    "TopicSettings",
    "Transport",
    "load_settings",
    "require_role",
    "role_problems",
    "setting_names",
    "unknown_variable_problems",
]
