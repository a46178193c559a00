"""The callbacks' signatures (webhook seed), checked in constant time; no I/O.

With ``md5=<secret>``, ``sha1=<secret>`` or ``crc32=<secret>`` in the handler URL, the
provider sends that parameter with the secret replaced by the hash of

- ``id:phone:status:<secret>`` for a status,
- ``phone:mes:to:<secret>`` for an incoming SMS,
- ``phone:ts:<secret>`` for a call confirmation.

md5 and sha1 are lower-case hex, as PHP's ``md5()``/``sha1()`` give (a public client checks
``sha1`` that way). The seed does not say how crc32 is written: PHP's ``crc32()`` gives an
unsigned decimal, ``hash('crc32b')`` eight hex digits, so both are accepted (the simulator
sends the decimal). Nor does it say in which encoding the string is hashed: the callback's
charset is tried, then UTF-8. A hash only proves the listed fields and the secret; the other
parameters (``err``, ``cost``...) are not covered, which is the provider's design.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .params import Kind, Params


class Algorithm(StrEnum):
    MD5 = "md5"
    SHA1 = "sha1"
    CRC32 = "crc32"


class Verdict(StrEnum):
    VALID = "valid"  # every signature present matches
    FORGED = "forged"  # a signature is present and does not match
    UNSIGNED = "unsigned"  # no signature parameter at all
    UNVERIFIABLE = "unverifiable"  # signed, but no secret is configured to check it


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    verdict: Verdict
    algorithms: tuple[Algorithm, ...] = ()


_ALGORITHMS = tuple(Algorithm)
_SHA1_ONLY = (Algorithm.SHA1,)
_UNSIGNED = SignatureCheck(Verdict.UNSIGNED)
# The verdicts of a check, one object for each outcome and set of algorithms present.
_CHECKS = {
    (verdict, present): SignatureCheck(verdict, present)
    for verdict in (Verdict.VALID, Verdict.FORGED)
    for present in (
        tuple(a for a, bit in zip(_ALGORITHMS, (1, 2, 4), strict=True) if mask & bit)
        for mask in range(1, 8)
    )
}
SIGNED_FIELDS: Mapping[Kind, tuple[str, ...]] = MappingProxyType(
    {
        Kind.STATUS: ("id", "phone", "status"),
        Kind.INCOMING: ("phone", "mes", "to"),
        Kind.WAITCALL: ("phone", "ts"),
    }
)


def signing_string(kind: Kind, values: Mapping[str, str], secret: str) -> str:
    """The string the provider hashes; a field it did not send counts as empty."""
    fields = [values.get(name, "") for name in SIGNED_FIELDS[kind]]
    fields.append(secret)
    return ":".join(fields)


def sign(algorithm: Algorithm, data: bytes) -> str:
    """The hash as the provider sends it (crc32 as an unsigned decimal)."""
    if algorithm is Algorithm.MD5:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if algorithm is Algorithm.SHA1:
        return hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return str(zlib.crc32(data))


def check_signature(params: Params, secret: str) -> SignatureCheck:
    """Whether the callback's signature parameters prove ``secret``."""
    return check_values(params.kind, params.values, params.charset, secret)


def check_values(
    kind: Kind, values: Mapping[str, str], charset: str, secret: str
) -> SignatureCheck:
    """:func:`check_signature` of parameters not (yet) wrapped in :class:`Params`."""
    if "sha1" in values and "md5" not in values and "crc32" not in values:  # the usual
        present: tuple[Algorithm, ...] = _SHA1_ONLY
    else:
        present = tuple([a for a in _ALGORITHMS if a in values])
        if not present:
            return _UNSIGNED
    if not secret:
        return SignatureCheck(Verdict.UNVERIFIABLE, present)
    text = signing_string(kind, values, secret)
    if text.isascii():  # the usual: the same bytes in every charset
        candidates = [text.encode("ascii")]
    else:
        candidates = [text.encode(charset, "replace")]
        if charset != "utf-8":
            candidates.append(text.encode("utf-8", "surrogatepass"))
    valid = True
    for algorithm in present:  # each one checked, even after a mismatch
        valid &= _matches(algorithm, values[algorithm], candidates)
    return _CHECKS[Verdict.VALID if valid else Verdict.FORGED, present]


def _matches(algorithm: Algorithm, given: str, candidates: list[bytes]) -> bool:
    offered = given.strip().lower()
    # compare_digest takes ASCII text as it is; anything else is compared as UTF-8 bytes.
    wide = not offered.isascii()
    found = False
    for data in candidates:
        for expected in _accepted_forms(algorithm, data):
            # Every form is compared (no early exit), each in constant time.
            if wide:
                found |= hmac.compare_digest(expected.encode(), offered.encode("utf-8", "replace"))
            else:
                found |= hmac.compare_digest(expected, offered)
    return found


def _accepted_forms(algorithm: Algorithm, data: bytes) -> tuple[str, ...]:
    if algorithm is Algorithm.SHA1:  # the usual, first
        return (hashlib.sha1(data, usedforsecurity=False).hexdigest(),)
    if algorithm is Algorithm.CRC32:
        value = zlib.crc32(data)
        return (str(value), f"{value:08x}")
    return (sign(algorithm, data),)
