"""The provider's delivery receipt and HLR result texts (SMPP seed, "Checking the status")."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.receipt import (
    Receipt,
    ReceiptFormatError,
    format_receipt,
    normalize_message_id,
    parse_receipt,
    parse_receipt_time,
)

SEED_RECEIPT = (
    "id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)
SEED_HLR = (
    "id:855469 stat:DELIVRD err:000 imsi:250023012345678 msc:79232510066 mcc:250 mnc:02 "
    "cn:Russian+Federation net:MegaFON+open+Joint+Stock+Company rcn: rnet:"
)


def test_seed_delivery_receipt_field_by_field() -> None:
    receipt = parse_receipt(SEED_RECEIPT)
    assert receipt == Receipt(
        message_id="854019",
        stat="DELIVRD",
        err=0,
        sub=1,
        dlvrd=1,
        submit_date="1108202241",
        done_date="1108202241",
        hlr=None,
    )
    assert not receipt.is_hlr
    assert parse_receipt_time(receipt.done_date or "") == datetime(2011, 8, 20, 22, 41, tzinfo=UTC)


def test_seed_hlr_result_field_by_field() -> None:
    receipt = parse_receipt(SEED_HLR)
    assert receipt == Receipt(
        message_id="855469",
        stat="DELIVRD",
        err=0,
        hlr={
            "imsi": "250023012345678",
            "msc": "79232510066",
            "mcc": "250",
            "mnc": "02",
            "cn": "Russian Federation",
            "net": "MegaFON open Joint Stock Company",
            "rcn": "",
            "rnet": "",
        },
    )
    assert receipt.is_hlr
    assert (receipt.sub, receipt.dlvrd, receipt.submit_date, receipt.done_date) == (None,) * 4


def test_format_writes_the_seed_receipt_exactly() -> None:
    moment = datetime(2011, 8, 20, 22, 41)
    assert format_receipt("854019", "DELIVRD", 0, submitted=moment, done=moment) == SEED_RECEIPT


@pytest.mark.parametrize(
    ("stat", "dlvrd"), [("DELIVRD", 3), ("UNDELIV", 0), ("EXPIRED", 0), ("REJECTD", 0)]
)
def test_format_counts_delivered_parts_from_the_status(stat: str, dlvrd: int) -> None:
    moment = datetime(2024, 2, 29, 23, 59)
    text = format_receipt("1", stat, 1, submitted=moment, done=moment, sub=3)
    assert parse_receipt(text).dlvrd == dlvrd


def test_non_ascii_digits_are_not_numbers() -> None:
    # "²" passes str.isdigit() but int() refuses it: the field is absent, not a crash.
    receipt = parse_receipt("id:1 sub:²²² dlvrd:001 stat:DELIVRD err:²")
    assert (receipt.sub, receipt.dlvrd, receipt.err) == (None, 1, None)


def test_receipt_with_trailing_text_field() -> None:
    receipt = parse_receipt(SEED_RECEIPT + " text:Hello")
    assert (receipt.message_id, receipt.stat, receipt.err) == ("854019", "DELIVRD", 0)


def test_keys_are_case_insensitive_and_status_upper_case() -> None:
    receipt = parse_receipt("ID:77 Sub:001 DLVRD:000 Submit Date:2401010000 stat:undeliv ERR:006")
    assert (receipt.message_id, receipt.stat, receipt.err) == ("77", "UNDELIV", 6)
    assert receipt.submit_date == "2401010000"


@pytest.mark.parametrize(
    "text", ["", "hello", "id:1 err:000", "stat:DELIVRD err:000", "idx:1 stat:X"]
)
def test_text_without_id_and_stat_is_not_a_receipt(text: str) -> None:
    with pytest.raises(ReceiptFormatError):
        parse_receipt(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1108202241", datetime(2011, 8, 20, 22, 41, tzinfo=UTC)),
        ("110820224159", datetime(2011, 8, 20, 22, 41, 59, tzinfo=UTC)),
        ("1113202241", None),
        ("1108202261", None),
        ("11082022411", None),
        ("11O8202241", None),
        ("", None),
        ("abc", None),
    ],
)
def test_receipt_time(value: str, expected: datetime | None) -> None:
    assert parse_receipt_time(value) == expected


# %y reads 69..99 as 19xx (POSIX pivot), so receipts written by this gateway stay below.
MINUTES = st.datetimes(datetime(2000, 1, 1), datetime(2068, 12, 31, 23, 59)).map(
    lambda moment: moment.replace(second=0, microsecond=0)
)
STATS = st.sampled_from(
    ["DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"]
)


@given(
    message_id=st.from_regex(r"[0-9A-Za-z-]{1,40}", fullmatch=True),
    stat=STATS,
    err=st.integers(0, 999),
    sub=st.integers(0, 999),
    dlvrd=st.one_of(st.none(), st.integers(0, 999)),
    submitted=MINUTES,
    done=MINUTES,
)
@settings(max_examples=150)
def test_format_parse_round_trip(  # noqa: PLR0917 - one argument per receipt field
    message_id: str,
    stat: str,
    err: int,
    sub: int,
    dlvrd: int | None,
    submitted: datetime,
    done: datetime,
) -> None:
    text = format_receipt(
        message_id, stat, err, submitted=submitted, done=done, sub=sub, dlvrd=dlvrd
    )
    receipt = parse_receipt(text)
    expected_dlvrd = dlvrd if dlvrd is not None else (sub if stat == "DELIVRD" else 0)
    assert (receipt.message_id, receipt.stat, receipt.err) == (message_id, stat, err)
    assert (receipt.sub, receipt.dlvrd, receipt.hlr) == (sub, expected_dlvrd, None)
    assert parse_receipt_time(receipt.submit_date or "") == submitted.replace(tzinfo=UTC)
    assert parse_receipt_time(receipt.done_date or "") == done.replace(tzinfo=UTC)


HLR_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(
    cn=HLR_NAMES,
    net=HLR_NAMES,
    rcn=HLR_NAMES,
    rnet=HLR_NAMES,
    imsi=st.from_regex(r"[0-9]{0,15}", fullmatch=True),
    mnc=st.from_regex(r"[0-9]{2,3}", fullmatch=True),
)
@settings(max_examples=100)
def test_hlr_names_are_urldecoded(  # noqa: PLR0917 - one argument per HLR field
    cn: str, net: str, rcn: str, rnet: str, imsi: str, mnc: str
) -> None:
    # Written the way the provider documents it: PHP urlencode, i.e. quote_plus.
    text = (
        f"id:855469 stat:DELIVRD err:001 imsi:{imsi} msc:79232510066 mcc:250 mnc:{mnc} "
        f"cn:{quote_plus(cn)} net:{quote_plus(net)} rcn:{quote_plus(rcn)} rnet:{quote_plus(rnet)}"
    )
    receipt = parse_receipt(text)
    assert receipt.err == 1
    assert receipt.hlr == {
        "imsi": imsi,
        "msc": "79232510066",
        "mcc": "250",
        "mnc": mnc,
        "cn": cn,
        "net": net,
        "rcn": rcn,
        "rnet": rnet,
    }


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_any_text_parses_or_raises_receipt_format_error(text: str) -> None:
    try:
        receipt = parse_receipt(text)
    except ReceiptFormatError:
        return
    assert receipt.err is None or receipt.err >= 0
    assert receipt.stat == receipt.stat.upper()


@pytest.mark.parametrize(
    ("given_id", "normalized"),
    [
        ("854019", "854019"),
        ("000854019", "854019"),
        ("0", "0"),
        ("000", "0"),
        (" 854019\n", "854019"),
        ("0xD0803", "854019"),
        ("0Xd0803", "854019"),
        ("0x000D0803", "854019"),
        ("abc-1", "abc-1"),
        ("0x", "0x"),
        ("0xZZ", "0xZZ"),
        ("²", "²"),  # a digit to str.isdigit, not to int()
        ("١٢", "١٢"),  # Arabic-Indic digits are not the provider's decimal ids
    ],
)
def test_normalize_message_id(given_id: str, normalized: str) -> None:
    assert normalize_message_id(given_id) == normalized


@given(st.integers(0, 2**64))
def test_decimal_padded_and_hex_ids_meet(number: int) -> None:
    assert normalize_message_id(str(number)) == str(number)
    assert normalize_message_id(f"{number:020d}") == str(number)
    assert normalize_message_id(hex(number)) == str(number)
    assert normalize_message_id(f"0X{number:X}") == str(number)


@given(st.text(max_size=30))
def test_normalize_is_idempotent(message_id: str) -> None:
    once = normalize_message_id(message_id)
    assert normalize_message_id(once) == once
