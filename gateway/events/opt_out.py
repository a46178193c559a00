"""``smsc.opt-out/1``: a subscriber's keyword SMS put their phone on the provider's blacklist
(``outcome: blacklisted``), or could not (``failed``, with the provider's error).

Its ``event_id`` is derived from the incoming SMS's own ``event_id``: the same SMS consumed
again gives the same opt-out event, so consumers drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .envelope import envelope, stable_event_id

SCHEMA = "smsc.opt-out/1"
BLOCKS = ("all", "mass", "single")  # phones.php add_black type 0, 1, 2 (seed 004)


@dataclass(frozen=True, slots=True)
class OptOut:
    """What the gateway did about one keyword SMS."""

    phone: str
    keyword: str
    incoming_event_id: str
    source: str
    to: str
    blacklist_type: int
    # The provider's blacklist entry (``id`` of add_black's answer); None when it failed.
    blacklist_id: int | None = None
    # When it failed: a reason code, the message, and the provider's error code if any.
    error: tuple[str, str, int | None] | None = None


def opt_out_event_id(incoming_event_id: str) -> str:
    return stable_event_id(SCHEMA, incoming_event_id)


def opt_out_event(opt_out: OptOut, occurred_at: datetime) -> dict[str, Any]:
    event = envelope(SCHEMA, opt_out_event_id(opt_out.incoming_event_id), occurred_at)
    blacklist: dict[str, Any] = {
        "type": opt_out.blacklist_type,
        "blocks": BLOCKS[opt_out.blacklist_type],
    }
    if opt_out.blacklist_id is not None:
        blacklist["id"] = opt_out.blacklist_id
    event.update(
        phone=opt_out.phone,
        keyword=opt_out.keyword,
        incoming_event_id=opt_out.incoming_event_id,
        source=opt_out.source,
        to=opt_out.to,
        outcome="failed" if opt_out.error is not None else "blacklisted",
        blacklist=blacklist,
    )
    if opt_out.error is not None:
        code, message, provider_code = opt_out.error
        event["error"] = {"code": code, "message": message}
        if provider_code is not None:
            event["error_code"] = provider_code
    return event
