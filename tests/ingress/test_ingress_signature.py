"""Signatures: md5, sha1 and crc32 of the seed's strings verify; a wrong one is refused.

The expected values are computed here with hashlib/zlib from the seed's formulas, and one
sha1 is a published vector from a third-party client (brainspec/smscru's callback test), so
the check does not only agree with itself.
"""

from __future__ import annotations

import hashlib
import zlib

import pytest

from gateway.ingress.callback import parse_callback
from gateway.ingress.params import CallbackRequest, Params, Rejection, decode_params
from gateway.ingress.signature import Algorithm, Verdict, check_signature, signing_string
from tests.ingress.ingress_support import SECRET, form

STATUS = {"id": "4711", "phone": "79991234567", "status": "1"}
INCOMING = {"phone": "79991234567", "mes": "Привет", "to": "79000000001"}
WAITCALL = {"waitcall": "1", "phone": "79991234567", "ts": "1706782300"}


def params_of(fields: dict[str, str], charset: str = "windows-1251") -> Params:
    decoded = decode_params(CallbackRequest("POST", b"", form(fields, charset)))
    assert not isinstance(decoded, Rejection)
    return decoded


def digests(text: str, charset: str = "windows-1251") -> dict[str, str]:
    data = text.encode(charset)
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "crc32": str(zlib.crc32(data)),
    }


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "crc32"])
@pytest.mark.parametrize(
    ("fields", "signed"),
    [
        (STATUS, f"4711:79991234567:1:{SECRET}"),
        (INCOMING, f"79991234567:Привет:79000000001:{SECRET}"),
        (WAITCALL, f"79991234567:1706782300:{SECRET}"),
    ],
)
def test_each_algorithm_verifies_each_kind(
    algorithm: str, fields: dict[str, str], signed: str
) -> None:
    params = params_of({**fields, algorithm: digests(signed)[algorithm]})
    assert signing_string(params.kind, params.values, SECRET) == signed
    check = check_signature(params, SECRET)
    assert check.verdict is Verdict.VALID
    assert check.algorithms == (Algorithm(algorithm),)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "crc32"])
def test_a_wrong_signature_is_forged(algorithm: str) -> None:
    wrong = digests(f"4711:79991234567:2:{SECRET}")[algorithm]  # another status
    params = params_of({**STATUS, algorithm: wrong})
    assert check_signature(params, SECRET).verdict is Verdict.FORGED
    good = digests(f"4711:79991234567:1:{SECRET}")[algorithm]
    assert (
        check_signature(params_of({**STATUS, algorithm: good}), "other").verdict is Verdict.FORGED
    )


def test_the_published_sha1_vector_verifies() -> None:
    # brainspec/smscru test/callback_test.rb: secret "zxc", phone 123, mes "text", to 234.
    fields = {"phone": "123", "mes": "text", "to": "234"}
    params = params_of({**fields, "sha1": "b6f768ce7614d7858cc4a6116f8ffd0dc236a3cd"})
    assert check_signature(params, "zxc").verdict is Verdict.VALID
    assert check_signature(params, "zxd").verdict is Verdict.FORGED


def test_crc32_is_accepted_as_hex_too_and_hex_in_upper_case() -> None:
    value = zlib.crc32(f"4711:79991234567:1:{SECRET}".encode())
    for written in (f"{value:08x}", f"{value:08X}", str(value)):
        assert (
            check_signature(params_of({**STATUS, "crc32": written}), SECRET).verdict
            is Verdict.VALID
        )
    sha1 = digests(f"4711:79991234567:1:{SECRET}")["sha1"].upper()
    assert check_signature(params_of({**STATUS, "sha1": sha1}), SECRET).verdict is Verdict.VALID


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-8"])
def test_cyrillic_text_is_hashed_in_the_callbacks_charset(charset: str) -> None:
    signed = digests(f"79991234567:Привет:79000000001:{SECRET}", charset)["md5"]
    params = params_of({**INCOMING, "charset": charset, "md5": signed}, charset)
    assert check_signature(params, SECRET).verdict is Verdict.VALID


def test_every_signature_present_must_match() -> None:
    good = digests(f"4711:79991234567:1:{SECRET}")
    params = params_of({**STATUS, "md5": good["md5"], "sha1": "0" * 40})
    assert check_signature(params, SECRET).verdict is Verdict.FORGED
    both = params_of({**STATUS, "md5": good["md5"], "sha1": good["sha1"]})
    assert check_signature(both, SECRET).verdict is Verdict.VALID


def test_unsigned_and_unverifiable() -> None:
    assert check_signature(params_of(STATUS), SECRET).verdict is Verdict.UNSIGNED
    signed = params_of({**STATUS, "sha1": "00"})
    assert check_signature(signed, "").verdict is Verdict.UNVERIFIABLE


def test_a_signed_but_malformed_callback_keeps_params_to_verify() -> None:
    fields = {"id": "4711", "phone": "79991234567", "status": "x"}
    signed = digests(f"4711:79991234567:x:{SECRET}")["sha1"]
    result = parse_callback(CallbackRequest("POST", b"", form({**fields, "sha1": signed})), "utf-8")
    assert isinstance(result, Rejection)
    assert result.params is not None
    assert check_signature(result.params, SECRET).verdict is Verdict.VALID
