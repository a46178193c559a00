"""The pure callback parser: every parameter of the seed, the kinds, charsets, formats, the
``!`` GET parameters and extra URL parameters; any bytes give a callback or a rejection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ingress.callback import (
    IncomingCallback,
    StatusCallback,
    VoiceMenu,
    WaitcallCallback,
    parse_callback,
)
from gateway.ingress.params import BodyFormat, CallbackRequest, Kind, Rejection, decode_params
from tests.ingress.ingress_support import (
    HLR_PARAMS,
    INCOMING_PARAMS,
    STATUS_PARAMS,
    VOICE_PARAMS,
    WAITCALL_PARAMS,
    form,
)

# Unicode categories hypothesis leaves out of generated text: surrogates cannot be encoded.
SURROGATES: tuple[Literal["Cs"], ...] = ("Cs",)
CYRILLIC = "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖ"


def post(body: bytes, query: bytes = b"", content_type: str = "") -> CallbackRequest:
    return CallbackRequest("POST", query, body, content_type)


def parsed(request: CallbackRequest, default: str = "windows-1251") -> object:
    return parse_callback(request, default)


def status(params: Mapping[str, str], charset: str = "windows-1251") -> StatusCallback:
    result = parsed(post(form({**params, "charset": charset}, charset)))
    assert isinstance(result, StatusCallback), result
    return result


def test_every_status_parameter_has_its_field() -> None:
    callback = status({**STATUS_PARAMS, **HLR_PARAMS, **VOICE_PARAMS})
    assert callback.message_id == "4711"
    assert callback.phone == "79991234567"
    assert callback.status == 1
    assert callback.time == "01.02.24 10:11:12"
    assert callback.ts == 1706782272
    assert callback.err == 245
    assert callback.syserr == "op-17"
    assert callback.cnt == 2
    assert callback.message_type == 1
    assert callback.cost == "3.90"
    assert callback.flag == 1825
    assert callback.sender == "Shop"
    assert callback.dtmf == "12*"
    assert callback.cmt == "Заказ 77\novertime: 01:02"
    assert dict(callback.hlr) == HLR_PARAMS
    assert callback.voice == VoiceMenu("00:17", "1#2", "4")
    assert dict(callback.extras) == {}


def test_every_incoming_parameter_has_its_field() -> None:
    callback = parsed(post(form({**INCOMING_PARAMS, **VOICE_PARAMS})))
    assert isinstance(callback, IncomingCallback)
    assert callback.incoming_id == "9001"
    assert callback.sms_id == "4711"
    assert callback.phone == "79991234567"
    assert callback.mes == INCOMING_PARAMS["mes"]
    assert callback.to == "79000000001"
    assert callback.smsc == "79168999100"
    assert callback.sent == 1706782200
    assert callback.time == 1706782210
    assert callback.voice == VoiceMenu("00:17", "1#2", "4")


def test_every_waitcall_parameter_has_its_field() -> None:
    callback = parsed(post(form({**WAITCALL_PARAMS, **VOICE_PARAMS})))
    assert isinstance(callback, WaitcallCallback)
    assert callback.waitcall == "1"
    assert callback.phone == "79991234567"
    assert callback.ts == 1706782300
    assert callback.voice == VoiceMenu("00:17", "1#2", "4")


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"id": "1", "phone": "7", "status": "1"}, Kind.STATUS),
        ({"phone": "7", "mes": "", "to": "8"}, Kind.INCOMING),  # present though empty
        ({"phone": "7", "mes": "hi", "waitcall": "1", "ts": "5"}, Kind.INCOMING),  # mes first
        ({"phone": "7", "waitcall": "", "ts": "5"}, Kind.WAITCALL),
        ({"phone": "7", "ts": "5"}, Kind.STATUS),  # neither mes nor waitcall: a status
    ],
)
def test_kinds_are_told_apart_as_the_seed_does(params: dict[str, str], kind: Kind) -> None:
    params_or_rejection = decode_params(post(form(params)))
    assert not isinstance(params_or_rejection, Rejection)
    assert params_or_rejection.kind is kind


def test_json_null_counts_as_absent_like_isset() -> None:
    body = json.dumps({"phone": "7", "mes": None, "waitcall": 1, "ts": 5}).encode()
    assert isinstance(parsed(post(body)), WaitcallCallback)


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-8"])
def test_cyrillic_arrives_intact_in_each_charset(charset: str) -> None:
    params = {"phone": "79991234567", "mes": CYRILLIC, "to": "7900", "charset": charset}
    callback = parsed(post(form(params, charset)))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == CYRILLIC
    assert callback.params.charset == charset


def test_windows_1251_is_the_default_and_the_default_is_settable() -> None:
    body = form({"phone": "7", "mes": CYRILLIC, "to": "8"}, "windows-1251")
    callback = parsed(post(body))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == CYRILLIC
    koi = parsed(post(form({"phone": "7", "mes": CYRILLIC, "to": "8"}, "koi8-r")), "koi8-r")
    assert isinstance(koi, IncomingCallback)
    assert koi.mes == CYRILLIC


@pytest.mark.parametrize(
    ("alias", "charset"),
    [("UTF8", "utf-8"), ("Windows-1251", "cp1251"), ("cp1251", "cp1251"), ("KOI8-R", "koi8-r")],
)
def test_charset_names_are_matched_loosely(alias: str, charset: str) -> None:
    body = form({"phone": "7", "mes": CYRILLIC, "to": "8", "charset": alias}, charset)
    callback = parsed(post(body))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == CYRILLIC


@pytest.mark.parametrize("charset", ["windows-1251", "utf-8"])
def test_json_body_fmt_3(charset: str) -> None:
    params = {**INCOMING_PARAMS, "fmt": "3", "charset": charset}
    body = json.dumps(params, ensure_ascii=False).encode(charset)
    callback = parsed(post(body, content_type="application/x-www-form-urlencoded"))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == INCOMING_PARAMS["mes"]
    assert callback.params.fmt is BodyFormat.JSON
    assert callback.params.charset == charset


def test_json_with_escapes_and_numbers() -> None:
    body = json.dumps({"id": 4711, "phone": "7999", "status": -1, "cost": 1.5, "mes2": "ё"})
    callback = parsed(post(body.encode("ascii")))
    assert isinstance(callback, StatusCallback)
    assert (callback.message_id, callback.status, callback.cost) == ("4711", -1, "1.5")
    assert callback.extras["mes2"] == "ё"


@pytest.mark.parametrize("charset", ["windows-1251", "utf-8"])
def test_xml_body_fmt_2(charset: str) -> None:
    children = "".join(f"<{k}>{v}</{k}>" for k, v in {**STATUS_PARAMS, **HLR_PARAMS}.items())
    xml = f'<?xml version="1.0" encoding="{charset}"?><data>{children}<fmt>2</fmt></data>'
    callback = parsed(post(xml.encode(charset)))
    assert isinstance(callback, StatusCallback)
    assert callback.cmt == STATUS_PARAMS["cmt"]
    assert dict(callback.hlr) == HLR_PARAMS
    assert callback.params.fmt is BodyFormat.XML


def test_koi8_r_is_not_used_with_fmt() -> None:
    # Seed: "When transmitting the fmt parameter, the koi8-r encoding is not used".
    params = {"phone": "7", "mes": CYRILLIC, "to": "8", "charset": "koi8-r"}
    body = json.dumps(params, ensure_ascii=False)
    callback = parsed(post(body.encode("windows-1251"), b"fmt=3"))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == CYRILLIC
    assert callback.params.charset == "windows-1251"


def test_get_parameters_from_the_bang_convention_are_merged() -> None:
    # Handler URL https://gw/smsc/callback!tenant=north&region=Москва?charset=utf-8&sha1=..
    query = form({"tenant": "north", "region": "Москва"}, "utf-8")
    body = form({"id": "1", "phone": "7", "status": "0", "charset": "utf-8", "x": "y"}, "utf-8")
    callback = parsed(post(body, query))
    assert isinstance(callback, StatusCallback)
    assert dict(callback.extras) == {"tenant": "north", "region": "Москва", "x": "y"}


def test_charset_can_come_by_get() -> None:
    body = form({"phone": "7", "mes": CYRILLIC, "to": "8"}, "koi8-r")
    callback = parsed(post(body, b"charset=koi8-r"))
    assert isinstance(callback, IncomingCallback)
    assert callback.mes == CYRILLIC


def test_a_get_request_carries_everything_in_the_query() -> None:
    query = form({"id": "1", "phone": "7", "status": "1"})
    callback = parsed(CallbackRequest("GET", query, b"ignored=1"))
    assert isinstance(callback, StatusCallback)
    assert "ignored" not in callback.params.values


def test_the_body_wins_over_the_query_on_a_shared_name() -> None:
    callback = parsed(post(b"id=2&phone=7&status=1", b"id=1"))
    assert isinstance(callback, StatusCallback)
    assert callback.message_id == "2"


def test_absent_err_means_zero_and_ids_are_normalized() -> None:
    callback = status({"id": "000123", "phone": "+7999", "status": "3"})
    assert (callback.err, callback.message_id, callback.phone) == (0, "123", "7999")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"phone=7&status=1", "missing_field"),
        (b"id=1&status=1", "missing_field"),
        (b"id=1&phone=7", "missing_field"),
        (b"id=1&phone=7&status=delivered", "invalid_field"),
        (b"id=1&phone=7&status=1&err=x", "invalid_field"),
        (b"id=1&phone=%2B&status=1", "invalid_field"),
        (b"waitcall=1&phone=7", "missing_field"),
        (b"waitcall=1&phone=7&ts=soon", "invalid_field"),
        (b"mes=hi&to=8", "missing_field"),
        (b"", "missing_field"),
    ],
)
def test_unusable_fields_are_rejected_with_the_params_kept(body: bytes, code: str) -> None:
    result = parsed(post(body))
    assert isinstance(result, Rejection)
    assert result.code == code
    assert result.params is not None


@pytest.mark.parametrize(
    ("body", "query", "code"),
    [
        (b"{not json", b"", "invalid_json"),
        (b"[1, 2]", b"fmt=3", "invalid_json"),
        (b'{"phone": {"nested": 1}}', b"", "unsupported_value"),
        (b"<data><phone>7", b"", "invalid_xml"),
        (b"<data><phone><x>1</x></phone></data>", b"", "unsupported_value"),
        (b'<!DOCTYPE d [<!ENTITY e "e">]><data><mes>&e;</mes></data>', b"", "invalid_xml"),
        (b"phone=7&mes=%98&to=8", b"", "undecodable_text"),  # 0x98 is unassigned in cp1251
        (b"phone=7&mes=%FF&to=8&charset=utf-8", b"", "undecodable_text"),
        (b"phone=7&mes=x&to=8&charset=latin-9", b"", "unsupported_charset"),
        (b"phone=7&mes=x&to=8", b"charset=ebcdic", "unsupported_charset"),
    ],
)
def test_unreadable_bodies_are_rejected_without_params(
    body: bytes, query: bytes, code: str
) -> None:
    result = parsed(post(body, query))
    assert isinstance(result, Rejection)
    assert result.code == code
    assert result.params is None


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["POST", "GET", "PUT"]),
    query=st.binary(max_size=200),
    body=st.one_of(
        st.binary(max_size=500),
        st.sampled_from([b"{", b"<", b'{"mes":', b"<d>", b"\xef\xbb\xbf{}"]).flatmap(
            lambda head: st.binary(max_size=200).map(lambda tail: head + tail)
        ),
    ),
    content_type=st.text(max_size=40),
    default=st.sampled_from(["windows-1251", "koi8-r", "utf-8", "nonsense"]),
)
def test_any_input_gives_a_callback_or_a_rejection(
    method: str, query: bytes, body: bytes, content_type: str, default: str
) -> None:
    result = parse_callback(CallbackRequest(method, query, body, content_type), default)
    assert isinstance(result, StatusCallback | IncomingCallback | WaitcallCallback | Rejection)


@settings(max_examples=300, deadline=None)
@given(
    charset=st.sampled_from(["windows-1251", "koi8-r", "utf-8"]),
    data=st.data(),
    raw_bytes=st.booleans(),
)
def test_form_values_round_trip_in_each_charset(
    charset: str, data: st.DataObject, raw_bytes: bool
) -> None:
    """What a form encodes in a charset decodes back, percent-encoded or sent as raw bytes."""
    text = st.text(
        alphabet=st.characters(codec=charset, exclude_categories=SURROGATES), max_size=30
    )
    values = data.draw(st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), text))
    params = {"phone": "7", "mes": data.draw(text), "to": "8", **values, "charset": charset}
    body = form(params, charset)
    if raw_bytes:  # a client that sends the charset's bytes without percent-encoding them
        body = b"&".join(
            k.encode(charset) + b"=" + v.encode(charset)
            for k, v in params.items()
            if not any(c in v for c in "&=+%")
        )
        params = {k: v for k, v in params.items() if not any(c in v for c in "&=+%")}
    result = parsed(post(body))
    if "mes" not in params:
        return
    assert isinstance(result, IncomingCallback), result
    assert dict(result.params.values) == params
