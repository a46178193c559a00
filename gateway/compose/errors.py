"""The one error of composition: a request that cannot be sent as asked."""

from __future__ import annotations

from gateway.errors import GatewayError


class CompositionError(GatewayError):
    """The request cannot be sent as asked; ``code`` is the result's reason code.

    Never retriable: the same request composes the same way every time, so the sender ends
    the request ``rejected`` with this code and sends nothing.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
