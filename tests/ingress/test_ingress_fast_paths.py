"""The parser's shortcuts for the usual callback agree with the general rules on any input:
integers written plainly, ASCII signing strings, callbacks without GET parameters."""

from __future__ import annotations

import re
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from gateway.ingress.callback import StatusCallback, interpret
from gateway.ingress.params import (
    BodyFormat,
    CallbackRequest,
    Kind,
    Params,
    Rejection,
    decode_params,
)
from gateway.ingress.signature import Algorithm, Verdict, check_signature, sign, signing_string
from tests.ingress.ingress_support import SECRET, form

CHARSETS = st.sampled_from(["windows-1251", "koi8-r", "utf-8"])
# Digits (ASCII and others), signs, spaces and a letter: around the shape of an integer.
NUMBERISH = st.text(alphabet="0123456789+- \t\u00a0\u0663\uff11x", max_size=22)
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
# Text any of the three charsets can carry (cp1251 and koi8-r share these letters).
VALUE = st.text(alphabet=st.sampled_from("0123456789abcXYZ +-_.:ЖжЁё"), max_size=12)


def status_params(**values: str) -> Params:
    fields = {"id": "4711", "phone": "79991234567", "status": "1", **values}
    return Params(Kind.STATUS, MappingProxyType(fields), "windows-1251", BodyFormat.FORM)


@given(NUMBERISH)
def test_integer_fields_follow_the_general_rule(raw: str) -> None:
    result = interpret(status_params(ts=raw))
    value = raw.strip()
    if not value:
        assert isinstance(result, StatusCallback)
        assert result.ts is None
    elif INTEGER.fullmatch(value):
        assert isinstance(result, StatusCallback)
        assert result.ts == int(value)
    else:
        assert isinstance(result, Rejection)
        assert result.code == "invalid_field"


@given(VALUE, VALUE, st.sampled_from(list(Algorithm)), CHARSETS, st.booleans())
def test_a_signature_verifies_whatever_the_text(
    message_id: str, phone: str, algorithm: Algorithm, charset: str, in_utf8: bool
) -> None:
    fields = {"id": message_id, "phone": phone, "status": "1"}
    text = signing_string(Kind.STATUS, fields, SECRET)
    signed = sign(algorithm, text.encode("utf-8" if in_utf8 else charset))
    params = Params(
        Kind.STATUS,
        MappingProxyType({**fields, algorithm.value: signed}),
        charset,
        BodyFormat.FORM,
    )
    assert check_signature(params, SECRET).verdict is Verdict.VALID
    forged = Params(
        params.kind, MappingProxyType({**fields, algorithm.value: "0"}), charset, params.fmt
    )
    assert check_signature(forged, SECRET).verdict is Verdict.FORGED


@given(st.dictionaries(VALUE.filter(bool), VALUE, max_size=6), CHARSETS)
def test_a_callback_without_get_parameters_reads_as_with_unrelated_ones(
    fields: dict[str, str], charset: str
) -> None:
    body = form({**fields, "charset": charset}, charset)
    alone = decode_params(CallbackRequest("POST", b"", body))
    beside = decode_params(CallbackRequest("POST", b"tenant=north", body))
    assert not isinstance(alone, Rejection)
    assert not isinstance(beside, Rejection)
    assert {**alone.values, "tenant": "north"} == dict(beside.values)
    assert (alone.kind, alone.charset, alone.fmt) == (beside.kind, beside.charset, beside.fmt)
