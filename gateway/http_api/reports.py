"""status.php answers as ``smsc.dlr/1`` reports with ``source: poll``.

status.php and the webhook's status callbacks speak the same status codes (reference 2.4), so
a polled report is built as the webhook's are (:mod:`gateway.ingress.mapping`): the normalized
status, finality and additional status from :func:`gateway.provider.codes.webhook_status`,
``stat`` the provider's numeric status as a string, ``err`` named from the delivery error
table, ``flag`` decoded as the SMPP vendor TLV 0x2001 is (same bits, reference 2.3). The
provider's own fields stay in ``raw`` (without the message text or comment).
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.events.delivery import DeliveryReport
from gateway.provider.codes import decode_flags, delivery_error_name, webhook_status

from .replies import MessageStatus

# HLR results in status answers (reference 2.3), as in receipts.
_HLR_FIELDS = ("imsi", "msc", "mcc", "mnc", "cn", "net", "rcn", "rnet")


def poll_report(status: MessageStatus, received_at: datetime) -> DeliveryReport:
    """The report of one status answer."""
    normalized, final, extra_status = webhook_status(status.status)
    done_at = None
    if final and status.last_timestamp:
        done_at = datetime.fromtimestamp(status.last_timestamp, UTC)
    hlr = {k: str(status.raw[k]) for k in _HLR_FIELDS if k in status.raw}
    return DeliveryReport(
        source="poll",
        message_id=status.message_id,
        phone=status.phone,
        status=normalized,
        final=final,
        stat=str(status.status),
        received_at=received_at,
        err=status.err,
        err_name=delivery_error_name(status.err),
        done_at=done_at,
        submit_date=status.send_date,
        done_date=status.last_date,
        cost=status.cost,
        parts=status.parts,
        flags=decode_flags(status.flag) if status.flag is not None else None,
        extra_status=extra_status,
        hlr=hlr or None,
        raw=dict(status.raw),
    )
