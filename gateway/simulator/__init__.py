"""The SMSC simulator: what ``smsc-gateway simulate``, the tests and the benchmarks talk to."""

from .config import DlrOutcome, SimulatorConfig
from .dlr import build_delivery_report, incoming_sms
from .smpp_server import NoReceiverError, SmppSimulator
from .stats import SimulatorStats, SubmitRecord

__all__ = [
    "DlrOutcome",
    "NoReceiverError",
    "SimulatorConfig",
    "SimulatorStats",
    "SmppSimulator",
    "SubmitRecord",
    "build_delivery_report",
    "incoming_sms",
]
