"""Stage 1: re-key send results and delivery reports by phone onto the internal route topic.

The two inputs are keyed differently (results by request_id, reports by provider message id)
and a long message's parts have different message ids, so neither input's partitioning
brings a message's parts and their reports together. Both are therefore repartitioned by the
recipient's phone, which every part and every report carries: all of one message's parts, and
the reports about them, land on one partition of the route topic, where stage 2 owns them.
"""

from __future__ import annotations

from gateway.events.dead_letter import Origin

from .model import RoutedReport
from .records import Channel, InvalidInputError, Outbound, Step, parse_report, parse_send_result

# A report travels inside a route record as JSON text (escaped), many to a record: one this
# size is no delivery report, and must not make its route record too large for Kafka.
MAX_REPORT_BYTES = 64 * 1024


def route_send_result(origin: Origin, key: bytes | None, value: bytes | None, now: float) -> Step:
    """One route record per accepted recipient, keyed by its phone; a bad result is
    dead-lettered; results with no accepted recipient route nothing."""
    step = Step()
    try:
        submitted = parse_send_result(value)
    except InvalidInputError as exc:
        step.dead_letter(origin, key, value, code=exc.code, reason=str(exc), at=now)
        return step
    for message in submitted:
        step.outbound.append(Outbound(Channel.ROUTE, message.phone.encode(), message.to_record()))
    return step


def route_report(origin: Origin, key: bytes | None, value: bytes | None, now: float) -> Step:
    """The report, with its origin and original bytes, keyed by its phone."""
    step = Step()
    try:
        if value is not None and len(value) > MAX_REPORT_BYTES:
            raise InvalidInputError("too_large", f"a report over {MAX_REPORT_BYTES} bytes")
        report = parse_report(value)
    except InvalidInputError as exc:
        step.dead_letter(origin, key, value, code=exc.code, reason=str(exc), at=now)
        return step
    routed = RoutedReport(origin, key, report.value)
    step.outbound.append(Outbound(Channel.ROUTE, report.phone.encode(), routed.to_record()))
    return step
