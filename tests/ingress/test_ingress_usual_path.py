"""The single pass for usual callbacks (``gateway.ingress.fast``) against the general path,
over generated callbacks: every kind, charset (windows-1251, koi8-r, utf-8, none), format
(form, XML, JSON), signature algorithm, extra URL parameters by POST and by GET, values
of any text the charset can carry, integers well and badly written, forged signatures, and
bytes that are no callback at all.

Whenever the single pass gives an event, the general path gives the same one (the same
bytes on Kafka); it takes every authentic, usable form callback without GET parameters; it
leaves everything else to the general path. The status event it builds in one pass is the
event ``gateway.events.delivery.dlr_event`` makes of the same report.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Any, Literal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway.events.delivery import DeliveryReport, dlr_event
from gateway.events.envelope import dumps
from gateway.ingress.callback import StatusCallback, interpret, parse_callback, read_status
from gateway.ingress.fast import usual_event
from gateway.ingress.mapping import Routed, callback_event, raw_fields, status_event
from gateway.ingress.params import CallbackRequest, Rejection, decode_params
from gateway.ingress.signature import Verdict, check_signature
from gateway.provider.codes import (
    MAIL_MESSAGE_TYPE,
    decode_flags,
    delivery_error_name,
    mail_delivery_error_name,
    webhook_status,
)
from gateway.settings.ingress import canonical_charset
from gateway.simulator.webhook_request import (
    HandlerUrl,
    Notice,
    build_request,
    incoming_notice,
    status_notice,
    waitcall_notice,
)
from tests.ingress.ingress_support import HLR_PARAMS, SECRET

SURROGATES: tuple[Literal["Cs"], ...] = ("Cs",)  # cannot be encoded
NOW = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
CHARSETS = ["windows-1251", "koi8-r", "utf-8"]
STATUSES = st.sampled_from(["-3", "-1", "0", "1", "2", "4", "20", "99"])
# Integers as the provider writes them, and as it should not.
INTEGER = st.integers(-5, 2**40).map(str)
NUMBERISH = st.one_of(
    INTEGER, INTEGER, INTEGER, st.text(alphabet="0123456789+- \t\u00a0\u0663x", max_size=8)
)
DIGITS = st.text(alphabet=string.digits, min_size=1, max_size=12)
EXAMPLES = settings(max_examples=600, deadline=None)


def text_in(charset: str) -> st.SearchStrategy[str]:
    chars = st.characters(codec=charset, exclude_categories=SURROGATES)
    return st.text(alphabet=st.one_of(chars, st.sampled_from("&=+%?#!; \n")), max_size=20)


@st.composite
def notices(draw: st.DrawFn, charset: str) -> Notice:
    text = text_in(charset)
    maybe = st.one_of(st.none(), NUMBERISH)
    kind = draw(st.sampled_from(["status", "incoming", "waitcall"]))
    if kind == "status":
        hlr = draw(st.sampled_from([{}, dict(HLR_PARAMS)]))
        return status_notice(
            draw(st.one_of(DIGITS, text)),
            draw(st.one_of(DIGITS, text)),
            draw(
                st.one_of(st.sampled_from(["-3", "-1", "0", "1", "2", "4", "20", "99"]), NUMBERISH)
            ),
            ts=draw(maybe),
            err=draw(maybe),
            cnt=draw(maybe),
            type=draw(st.one_of(st.none(), st.sampled_from(["0", "7", "8"]))),
            flag=draw(maybe),
            time=draw(st.one_of(st.none(), text)),
            cost=draw(st.one_of(st.none(), text)),
            cmt=draw(st.one_of(st.none(), text)),
            calltime=draw(st.one_of(st.none(), DIGITS)),
            **hlr,
        )
    if kind == "incoming":
        return incoming_notice(
            draw(DIGITS),
            draw(text),
            draw(st.one_of(DIGITS, text)),
            id=draw(st.one_of(st.none(), DIGITS)),
            sms_id=draw(st.one_of(st.none(), DIGITS)),
            sent=draw(maybe),
            time=draw(maybe),
        )
    return waitcall_notice(draw(DIGITS), draw(st.integers(0, 2**40)), callmenu=draw(text))


@st.composite
def callbacks(draw: st.DrawFn) -> tuple[CallbackRequest, str]:
    """A callback as the provider sends it, and the ingress's default charset."""
    charset = draw(st.sampled_from(["", *CHARSETS]))
    fmt = draw(st.sampled_from(["", "", "", "&fmt=2", "&fmt=3"]))
    algorithm = draw(st.sampled_from(["md5", "sha1", "crc32"]))
    secret = draw(st.sampled_from([SECRET, SECRET, SECRET, "not-the-secret"]))
    get = draw(st.sampled_from(["", "", "", "!tenant=north", "!t=%D0%AE&u"]))
    extra = draw(st.sampled_from(["", "&region=x", "&x_note=%D0%96%D0%B4"]))
    query = f"?{algorithm}={secret}{extra}" + (f"&charset={charset}" if charset else "") + fmt
    handler = HandlerUrl.parse(f"http://gw/smsc/callback{get}{query}")
    request = build_request(handler, draw(notices(handler.charset)))
    default = draw(st.sampled_from(CHARSETS))
    wire = CallbackRequest("POST", request.url.partition("?")[2].encode(), request.body)
    return wire, default


@st.composite
def usual_callbacks(draw: st.DrawFn) -> tuple[CallbackRequest, str]:
    """An authentic, usable form callback without GET parameters, in any charset."""
    charset = draw(st.sampled_from(["", *CHARSETS]))
    algorithm = draw(st.sampled_from(["md5", "sha1", "crc32"]))
    query = f"?{algorithm}={SECRET}" + (f"&charset={charset}" if charset else "")
    handler = HandlerUrl.parse(f"http://gw/smsc/callback{query}&note=%D0%96")
    text = text_in(handler.charset)
    kind = draw(st.sampled_from(["status", "incoming", "waitcall"]))
    if kind == "status":
        notice = status_notice(
            draw(DIGITS), draw(DIGITS), draw(STATUSES), ts=draw(INTEGER), err=draw(DIGITS),
            cnt=draw(DIGITS), flag=draw(DIGITS), time=draw(text), cmt=draw(text),
        )  # fmt: skip
    elif kind == "incoming":
        notice = incoming_notice(draw(DIGITS), draw(text), draw(DIGITS), id=draw(DIGITS))
    else:
        notice = waitcall_notice(draw(DIGITS), draw(st.integers(0, 2**40)), ringtime=draw(text))
    request = build_request(handler, notice)
    # Without a charset parameter the provider and the ingress must agree on the default.
    default = draw(st.sampled_from(CHARSETS)) if charset else handler.charset
    return CallbackRequest("POST", b"", request.body), default


def general(request: CallbackRequest, default: str) -> Routed | None:
    """What the general path publishes for ``request`` (None: refused or dead-lettered)."""
    callback = parse_callback(request, default)
    if isinstance(callback, Rejection):
        return None
    if check_signature(callback.params, SECRET).verdict is not Verdict.VALID:
        return None
    return callback_event(callback, NOW)


def usual(request: CallbackRequest, default: str) -> Routed | None:
    return usual_event(request, canonical_charset(default) or "", SECRET, NOW)


def assert_same(fast: Routed, reference: Routed | None) -> None:
    assert reference is not None
    assert (fast.kind, fast.key) == (reference.kind, reference.key)
    assert dumps(fast.event) == dumps(reference.event)


@EXAMPLES
@given(callbacks())
def test_the_single_pass_agrees_with_the_general_path(case: tuple[CallbackRequest, str]) -> None:
    request, default = case
    fast, reference = usual(request, default), general(request, default)
    event("single pass" if fast is not None else "general path")
    if fast is not None:
        assert_same(fast, reference)
        return
    # Left to the general path: a document, GET parameters, or nothing to publish.
    readable = decode_params(request, default)
    form_without_query = not request.query and request.body[:1].isalpha()
    assert reference is None or not form_without_query, (request, readable)


@EXAMPLES
@given(usual_callbacks())
def test_every_usual_callback_takes_the_single_pass(case: tuple[CallbackRequest, str]) -> None:
    request, default = case
    fast = usual(request, default)
    assert fast is not None, request
    assert_same(fast, general(request, default))


@EXAMPLES
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.tuples(
                st.sampled_from(["id", "phone", "status", "mes", "to", "waitcall", "ts", "sha1"]),
                st.text(alphabet="0123456789abc%+-D0AF&= ", max_size=10),
            ),
            max_size=8,
        ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode()),
    ),
    default=st.sampled_from(CHARSETS),
)
def test_any_bytes_give_the_general_paths_event_or_none(body: bytes, default: str) -> None:
    request = CallbackRequest("POST", b"", body)
    fast = usual(request, default)
    if fast is not None:
        assert_same(fast, general(request, default))


def test_a_forged_or_unsigned_usual_callback_is_left_to_the_general_path() -> None:
    notice = status_notice("4711", "79991234567", 1)
    for query in (f"?sha1={SECRET}", "?sha1=guess", "?region=x"):
        request = build_request(HandlerUrl.parse(f"http://gw/cb{query}"), notice)
        assert (usual(CallbackRequest("POST", b"", request.body), CHARSETS[0]) is None) == (
            query != f"?sha1={SECRET}"
        )


def reference_report(callback: StatusCallback) -> DeliveryReport:
    """The report a status callback stands for, field by field, as ``dlr_event`` takes it."""
    status, final, extra_status = webhook_status(callback.status)
    message_type = callback.message_type
    if message_type is None and callback.flag is not None:
        message_type = callback.flag & 0x0F
    mail = message_type == MAIL_MESSAGE_TYPE
    ts = callback.ts
    return DeliveryReport(
        source="webhook",
        message_id=callback.message_id,
        phone=callback.phone,
        status=status,
        final=final,
        stat=str(callback.status),
        received_at=NOW,
        err=callback.err,
        err_name=(mail_delivery_error_name if mail else delivery_error_name)(callback.err),
        done_at=datetime.fromtimestamp(ts, UTC) if ts and 0 < ts <= 253402300799 else None,
        done_date=callback.time,
        cost=callback.cost,
        parts=callback.cnt if message_type != 7 else None,
        flags=decode_flags(callback.flag) if callback.flag is not None else None,
        extra_status=extra_status,
        hlr=dict(callback.hlr) or None,
        raw=raw_fields(callback.params),
    )


@EXAMPLES
@given(st.sampled_from(CHARSETS).flatmap(notices), st.sampled_from(CHARSETS))
def test_the_status_event_is_the_shared_dlr_event(notice: Notice, charset: str) -> None:
    handler = HandlerUrl.parse(f"http://gw/cb?sha1={SECRET}&charset={charset}")
    request = build_request(handler, notice)
    params = decode_params(CallbackRequest("POST", b"", request.body))
    assert not isinstance(params, Rejection)
    callback = interpret(params)
    if not isinstance(callback, StatusCallback):
        return
    expected: dict[str, Any] = dlr_event(reference_report(callback))
    fields = read_status(params.values)
    assert fields is not None  # what interpret took, read_status takes
    assert dumps(status_event(params.values, fields, NOW).event) == dumps(expected)
