"""The HTTP API's failures as typed errors.

The provider answers API errors with HTTP 200 and an ``error_code`` (reference/smsc-http-api.md
sections 1.3-1.4, 2.6, 3.1). Each code maps through :data:`ERROR_CLASSES` to a class that keeps
the number, says whether trying again can help (``retriable``) and, when it can, after how long
(``retry_after_seconds``):

=====  ===========================================  =========  ==============================
code   meaning                                      retriable  what the gateway does
=====  ===========================================  =========  ==============================
1      parameters error                             no         the request ends rejected
2      wrong login/password or IP not allowed       no         rejected; credential paused
3      not enough money                             yes        sends parked, retried later
4      IP temporarily blocked                       yes        credential's circuit open
5      invalid date (``time``)                      no         rejected
6      message denied (text or sender)              no         rejected
7      invalid phone number                         no         rejected
8      message cannot be delivered                  no         rejected
9      duplicate request, or too many at once       yes        back off from a minute
=====  ===========================================  =========  ==============================

Some scripts mean other things by a code (:data:`SCRIPT_ERROR_CLASSES`): get.php's 3 is
"nothing found", wait_call.php's 5 a blacklisted phone and its 6 a cost it cannot have;
downloads.php's 5 and phones.php's 3 are "not found", phones.php's 5 an operation that failed,
receive_phones.php's 3 too little money for the rent of one number.

Transport failures are :class:`HttpTransportError`; ``maybe_processed`` says whether the
provider may have acted on the request (a timeout after it was written) or surely did not
(the connection was never made).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.errors import GatewayError, TransportError


class HttpApiError(GatewayError):
    """Base of the HTTP API's errors; ``reason`` is the reason code results carry."""

    reason = "http_api_error"
    retry_after_seconds: float | None = None


class ProviderApiError(HttpApiError):
    """An ``error_code`` answer. ``message_id`` is set for the codes that still assign one
    (3, 6, 7, 8 on send.php)."""

    reason = "provider_error"

    def __init__(
        self,
        code: int,
        description: str,
        *,
        script: str,
        message_id: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{script}.php error_code {code}: {description}")
        self.code = code
        self.description = description
        self.script = script
        self.message_id = message_id
        self.retry_after_seconds = retry_after_seconds


class ParametersError(ProviderApiError):
    reason = "parameters_error"


class AuthorisationError(ProviderApiError):
    reason = "authorisation_error"


class InsufficientFundsError(ProviderApiError):
    """Not enough money: nothing is sent until the account is topped up."""

    reason = "insufficient_funds"
    retriable = True


class IpBlockedError(ProviderApiError):
    """The provider blocks this IP for a while (after repeated errors)."""

    reason = "ip_blocked"
    retriable = True


class InvalidTimeError(ProviderApiError):
    reason = "invalid_time"


class MessageDeniedError(ProviderApiError):
    reason = "message_denied"


class InvalidPhoneError(ProviderApiError):
    reason = "invalid_phone"


class UndeliverableError(ProviderApiError):
    reason = "cannot_deliver"


class TooManyRequestsError(ProviderApiError):
    """Error 9: an identical request within a minute, or too many at once or per minute."""

    reason = "too_many_requests"
    retriable = True


class NothingFoundError(ProviderApiError):
    """Nothing matches the request: get.php 3 (an empty answer, not a failure); no such
    record, downloads.php 5 and phones.php 3."""

    reason = "not_found"


class BlacklistedError(ProviderApiError):
    """wait_call.php error 5: the phone is on the client's blacklist."""

    reason = "blacklisted"


class CostUnavailableError(ProviderApiError):
    """wait_call.php error 6: the account's settings (allowed numbers, hours...) leave the
    service's cost unknown, so it is refused."""

    reason = "cost_unavailable"


class OperationFailedError(ProviderApiError):
    """phones.php error 5: the provider could not carry the operation out."""

    reason = "operation_failed"


class RentUnaffordableError(ProviderApiError):
    """receive_phones.php error 3: the balance does not cover renting the number. Unlike
    send.php's 3 it says nothing of sending, so it does not park the credential."""

    reason = "insufficient_funds"


ERROR_CLASSES: Mapping[int, type[ProviderApiError]] = MappingProxyType(
    {
        1: ParametersError,
        2: AuthorisationError,
        3: InsufficientFundsError,
        4: IpBlockedError,
        5: InvalidTimeError,
        6: MessageDeniedError,
        7: InvalidPhoneError,
        8: UndeliverableError,
        9: TooManyRequestsError,
    }
)


# Codes whose meaning differs by script (they take precedence over ERROR_CLASSES): get.php
# answers 3 for "not found" ([3P] awd-studio Response.php, reference section 4), wait_call.php
# 5 for a blacklisted phone and 6 for a cost it cannot have (webhook seed).
SCRIPT_ERROR_CLASSES: Mapping[str, Mapping[int, type[ProviderApiError]]] = MappingProxyType(
    {
        "get": MappingProxyType({3: NothingFoundError}),
        "wait_call": MappingProxyType({5: BlacklistedError, 6: CostUnavailableError}),
        # Seed 000 (receive_phones.php, downloads.php); the contact_answer page (phones.php).
        "receive_phones": MappingProxyType({3: RentUnaffordableError}),
        "downloads": MappingProxyType({5: NothingFoundError}),
        "phones": MappingProxyType({3: NothingFoundError, 5: OperationFailedError}),
    }
)


def error_class(code: int, script: str) -> type[ProviderApiError]:
    """The class of ``code`` as ``script`` means it; an undocumented code gets the base."""
    own = SCRIPT_ERROR_CLASSES.get(script)
    if own is not None and code in own:
        return own[code]
    return ERROR_CLASSES.get(code, ProviderApiError)


def provider_error(
    code: int,
    description: str,
    *,
    script: str,
    message_id: int | None = None,
    retry_after_seconds: float | None = None,
) -> ProviderApiError:
    """The typed error of ``code``; an undocumented code is a non-retriable base error."""
    cls = error_class(code, script)
    return cls(
        code,
        description,
        script=script,
        message_id=message_id,
        retry_after_seconds=retry_after_seconds,
    )


class HttpTransportError(TransportError, HttpApiError):
    """No API answer: connection, timeout, HTTP status other than 200, unreadable body."""

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed


class CircuitOpenError(HttpApiError):
    """The credential is paused (error 4, or error 2); nothing was sent."""

    retriable = True

    def __init__(self, reason: str, retry_after_seconds: float) -> None:
        super().__init__(f"credential paused ({reason}) for {retry_after_seconds:.0f} s more")
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds
