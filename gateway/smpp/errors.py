"""Errors of the SMPP layer, and the table from command_status to error class."""

from __future__ import annotations

from gateway.errors import GatewayError, TransportError

from .constants import CommandStatus, status_name


class SmppError(GatewayError):
    """Base of every SMPP error."""


class ProtocolError(SmppError):
    """Bytes from the peer that are not valid SMPP.

    ``command_status`` is the status to answer with (in a generic_nack or the request's
    response); ``sequence_number`` and ``command_id`` are known when the header was readable.
    """

    def __init__(
        self,
        message: str,
        *,
        command_status: int = CommandStatus.ESME_RINVCMDLEN,
        command_id: int | None = None,
        sequence_number: int | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.command_id = command_id
        self.sequence_number = sequence_number
        # A fatal error leaves the byte stream out of step: the connection must close.
        self.fatal = fatal


class WindowFullError(SmppError):
    """The in-flight window is full; wait for a response before sending another request."""

    retriable = True


class SessionStateError(SmppError):
    """The operation is not allowed in the session's current state."""


class ConnectionClosedError(SmppError, TransportError):
    """The SMPP connection is gone (or never came up): the request got no response."""

    retriable = True


class ResponseTimeoutError(SmppError):
    """No response arrived within the response timeout."""

    retriable = True


class CommandStatusError(SmppError):
    """The peer answered a request with a non-zero command_status."""

    def __init__(self, command_status: int) -> None:
        super().__init__(f"peer answered {status_name(command_status)}")
        self.command_status = command_status


class ThrottledError(CommandStatusError):
    """The provider is over its rate or queue limit; slow down and send again."""

    retriable = True


class TemporaryRejectError(CommandStatusError):
    """A temporary failure at the provider; sending again later can succeed."""

    retriable = True


class PermanentRejectError(CommandStatusError):
    """The provider refused the message; sending it again will not help."""


class BindRejectedError(CommandStatusError):
    """The provider refused the bind (credentials, system_type, or too many binds)."""


_TEMPORARY = frozenset(
    {
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RSUBMITFAIL,
        CommandStatus.ESME_RUNKNOWNERR,
        CommandStatus.ESME_RDELIVERYFAILURE,
    }
)
_THROTTLING = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})


def error_for_status(command_status: int) -> CommandStatusError:
    """The error class for a non-zero command_status of a submit-type response."""
    if command_status in _THROTTLING:
        return ThrottledError(command_status)
    if command_status in _TEMPORARY:
        return TemporaryRejectError(command_status)
    return PermanentRejectError(command_status)
