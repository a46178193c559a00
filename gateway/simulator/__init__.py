"""The SMSC simulator: what ``smsc-gateway simulate``, the tests and the benchmarks talk to."""

from gateway.settings.simulator import DlrOutcome, SimulatorSettings

from .dlr import build_delivery_report
from .faults import Faults
from .incoming import IncomingSpec, build_incoming
from .logins import BindFlags
from .smpp_server import NoReceiverError, SmppSimulator
from .stats import AcceptedParts, SimulatorStats, SubmitRecord

__all__ = [
    "AcceptedParts",
    "BindFlags",
    "DlrOutcome",
    "Faults",
    "IncomingSpec",
    "NoReceiverError",
    "SimulatorSettings",
    "SimulatorStats",
    "SmppSimulator",
    "SubmitRecord",
    "build_delivery_report",
    "build_incoming",
]
