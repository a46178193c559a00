"""The SMSC simulator: what ``smsc-gateway simulate``, the tests and the benchmarks talk to."""

from .config import DlrOutcome, SimulatorConfig
from .dlr import build_delivery_report, incoming_sms
from .faults import Faults
from .logins import BindFlags
from .smpp_server import NoReceiverError, SmppSimulator
from .stats import AcceptedParts, SimulatorStats, SubmitRecord

__all__ = [
    "AcceptedParts",
    "BindFlags",
    "DlrOutcome",
    "Faults",
    "NoReceiverError",
    "SimulatorConfig",
    "SimulatorStats",
    "SmppSimulator",
    "SubmitRecord",
    "build_delivery_report",
    "incoming_sms",
]
