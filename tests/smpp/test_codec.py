"""The SMPP codec: bytes to PDUs and back, and framing of a byte stream.

Every decoder test feeds whole frames, byte by byte and with trailing bytes; hypothesis builds
arbitrary valid PDUs of every type (unknown and vendor TLVs included) and arbitrary or mutated
bytes, which must parse or raise ProtocolError and nothing else.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.codec import FrameDecoder, _encode_general, decode, encode, peek_header
from gateway.smpp.constants import CommandId, CommandStatus, TlvTag
from gateway.smpp.errors import ProtocolError
from gateway.smpp.pdu import (
    PDU_CLASSES,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Kind,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    tlv_cstr,
    tlv_u8,
    tlv_u16,
)

RECEIPT = (
    b"id:854019 sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 stat:DELIVRD err:000"
)

SAMPLES: list[Pdu] = [
    BindTransmitter(sequence_number=1, system_id="login", password="secret", system_type="ISO"),
    BindReceiver(sequence_number=2, system_id="login", password="pw", addr_ton=1, addr_npi=1),
    BindTransceiver(
        sequence_number=3, system_id="login", password="pw", system_type="MCON2", address_range="7"
    ),
    BindTransmitterResp(sequence_number=1, system_id="SMSC"),
    BindReceiverResp(sequence_number=2, system_id="SMSC"),
    BindTransceiverResp(
        sequence_number=3,
        system_id="SMSC",
        tlvs=(tlv_u8(TlvTag.SC_INTERFACE_VERSION, 0x34),),
    ),
    Unbind(sequence_number=4),
    UnbindResp(sequence_number=4),
    EnquireLink(sequence_number=5),
    EnquireLinkResp(sequence_number=5),
    GenericNack(sequence_number=6, command_status=CommandStatus.ESME_RINVCMDID),
    SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr_npi=1,
        source_addr="SMSC",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79231234567",
        validity_period="000001000000000R",
        registered_delivery=1,
        data_coding=8,
        short_message="Привет".encode("utf-16-be"),
        tlvs=(tlv_u16(TlvTag.USER_MESSAGE_REFERENCE, 42), Tlv(0x1401, b"\x00\xff")),
    ),
    SubmitSmResp(sequence_number=7, message_id="854019"),
    DeliverSm(
        sequence_number=8,
        source_addr="79231234567",
        destination_addr="SMSC",
        esm_class=0x04,
        short_message=RECEIPT,
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, "854019"),
            tlv_u8(TlvTag.MESSAGE_STATE, 2),
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x00"),
            tlv_cstr(TlvTag.SMSC_COST, "1.45"),
            tlv_u16(TlvTag.SMSC_FLAGS, 0x0104),
            tlv_u16(TlvTag.SMSC_PARTS, 1),
            tlv_cstr(TlvTag.SMSC_MCCMNC, "25002"),
            tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 2),
        ),
    ),
    DeliverSmResp(sequence_number=8),
    QuerySm(sequence_number=9, message_id="854019", source_addr_ton=5, source_addr="SMSC"),
    QuerySmResp(
        sequence_number=9,
        message_id="854019",
        final_date="110820224100000+",
        message_state=2,
        error_code=0,
    ),
]


def test_samples_cover_every_pdu_class() -> None:
    assert {type(pdu) for pdu in SAMPLES} == set(PDU_CLASSES.values())


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda pdu: type(pdu).__name__)
def test_every_pdu_type_round_trips(pdu: Pdu) -> None:
    frame = encode(pdu)
    assert peek_header(frame) == (
        len(frame),
        pdu.command_id,
        pdu.command_status,
        pdu.sequence_number,
    )
    assert decode(frame) == pdu
    assert encode(decode(frame)) == frame


def test_enquire_link_wire_form() -> None:
    # SMPP 3.4 section 4.11.1: a bare 16-octet header.
    assert encode(EnquireLink(sequence_number=1)).hex() == "00000010000000150000000000000001"


def test_submit_sm_wire_form_built_by_hand() -> None:
    body = (
        b"\x00"  # service_type
        + b"\x05\x01SMSC\x00"  # source_addr_ton, source_addr_npi, source_addr
        + b"\x01\x0179231234567\x00"  # dest_addr_ton, dest_addr_npi, destination_addr
        + b"\x00\x00\x00"  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x01\x00\x00\x00"  # registered_delivery, replace, data_coding, sm_default_msg_id
        + b"\x02hi"  # sm_length, short_message
        + b"\x02\x04\x00\x02\x00\x2a"  # user_message_reference = 42
    )
    frame = struct.pack(">IIII", 16 + len(body), 4, 0, 0x7FFFFFFF) + body
    pdu = SubmitSm(
        sequence_number=0x7FFFFFFF,
        source_addr_ton=5,
        source_addr_npi=1,
        source_addr="SMSC",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79231234567",
        registered_delivery=1,
        short_message=b"hi",
        tlvs=(tlv_u16(TlvTag.USER_MESSAGE_REFERENCE, 42),),
    )
    assert encode(pdu) == frame
    assert decode(frame) == pdu


# -- framing ---------------------------------------------------------------------------------

STREAM_FRAMES = [encode(pdu) for pdu in SAMPLES]
STREAM = b"".join(STREAM_FRAMES)


def test_frame_decoder_fed_whole() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(STREAM) == STREAM_FRAMES
    assert decoder.buffered == 0


def test_frame_decoder_fed_byte_by_byte() -> None:
    decoder = FrameDecoder()
    frames: list[bytes] = []
    for index in range(len(STREAM)):
        frames += decoder.feed(STREAM[index : index + 1])
    assert frames == STREAM_FRAMES
    assert [decode(frame) for frame in frames] == SAMPLES


@pytest.mark.parametrize("cut", [1, 3, 4, 15, 16, 20])
def test_frame_decoder_keeps_trailing_bytes(cut: int) -> None:
    following = encode(SAMPLES[-1])
    decoder = FrameDecoder()
    assert decoder.feed(STREAM_FRAMES[0] + following[:cut]) == [STREAM_FRAMES[0]]
    assert decoder.buffered == cut
    assert decoder.feed(following[cut:]) == [following]
    assert decoder.buffered == 0


def test_decode_refuses_trailing_bytes_in_a_frame() -> None:
    frame = encode(SAMPLES[0])
    with pytest.raises(ProtocolError) as caught:
        decode(frame + b"\x00")
    assert caught.value.fatal


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
@settings(max_examples=60)
def test_frame_decoder_independent_of_chunking(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    decoder = FrameDecoder()
    frames: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        frames += decoder.feed(STREAM[start:end])
    assert frames == STREAM_FRAMES


def test_oversized_frame_refused_on_its_length_octets() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    assert decoder.feed((1025).to_bytes(4, "big")[:3]) == []
    assert decoder.buffered == 3
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(b"\x01")  # the fourth length octet, no body yet
    assert caught.value.fatal
    assert caught.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert decoder.buffered == 0


@pytest.mark.parametrize("length", [0, 1, 15])
def test_length_below_header_refused(length: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        FrameDecoder().feed(length.to_bytes(4, "big"))
    assert caught.value.fatal


def test_frame_of_exactly_max_size_accepted() -> None:
    pdu = SubmitSm(sequence_number=1, destination_addr="1", short_message=b"x" * 200)
    frame = encode(pdu)
    assert FrameDecoder(max_frame_size=len(frame)).feed(frame) == [frame]
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame_size=len(frame) - 1).feed(frame[:4])


def test_max_frame_size_below_header_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="header"):
        FrameDecoder(max_frame_size=15)


# -- error responses and decode errors ----------------------------------------------------

BODY_ONLY_ON_SUCCESS = [cls for cls in PDU_CLASSES.values() if cls.BODY_ONLY_ON_SUCCESS]


def test_body_only_on_success_classes() -> None:
    expected: set[type[Pdu]] = {
        BindTransmitterResp,
        BindReceiverResp,
        BindTransceiverResp,
        SubmitSmResp,
        DeliverSmResp,
        QuerySmResp,
    }
    assert set(BODY_ONLY_ON_SUCCESS) == expected


@pytest.mark.parametrize("cls", BODY_ONLY_ON_SUCCESS, ids=lambda cls: cls.__name__)
def test_error_response_has_no_body(cls: type[Pdu]) -> None:
    pdu = cls(sequence_number=11, command_status=CommandStatus.ESME_RTHROTTLED)
    frame = encode(pdu)
    assert frame == struct.pack(">IIII", 16, cls.command_id, 0x58, 11)
    assert decode(frame) == pdu


def test_submit_sm_resp_error_drops_given_message_id() -> None:
    pdu = SubmitSmResp(sequence_number=3, command_status=0x45, message_id="ignored")
    assert len(encode(pdu)) == 16


def test_error_response_with_a_body_still_decodes() -> None:
    # Some SMSCs send message_id even on failure; it must not break the stream.
    frame = struct.pack(">IIII", 17, CommandId.SUBMIT_SM_RESP, 0x45, 3) + b"\x00"
    assert decode(frame) == SubmitSmResp(sequence_number=3, command_status=0x45)


def _frame(command_id: int, body: bytes, sequence: int = 9) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (_frame(0x00000099, b""), CommandStatus.ESME_RINVCMDID),
        (_frame(0x80000099, b""), CommandStatus.ESME_RINVCMDID),
        (_frame(CommandId.BIND_TRANSCEIVER, b"x" * 16 + b"\x00"), CommandStatus.ESME_RINVCMDLEN),
        (_frame(CommandId.SUBMIT_SM, b""), CommandStatus.ESME_RINVCMDLEN),
        (_frame(CommandId.ENQUIRE_LINK, b"\x00"), CommandStatus.ESME_RINVCMDLEN),
        (_frame(CommandId.SUBMIT_SM_RESP, b"854019"), CommandStatus.ESME_RINVCMDLEN),
        (encode(SAMPLES[11]) + b"\x02\x04", None),  # length no longer matches: fatal
        (
            _frame(CommandId.DELIVER_SM, encode(SAMPLES[13])[16:] + b"\x20\x00\x00"),
            CommandStatus.ESME_RINVOPTPARSTREAM,
        ),
        (
            _frame(CommandId.DELIVER_SM, encode(SAMPLES[13])[16:] + b"\x20\x00\x00\x05ab"),
            CommandStatus.ESME_RINVPARLEN,
        ),
    ],
    ids=[
        "unknown-request",
        "unknown-response",
        "cstr-too-long",
        "empty-submit",
        "enquire-with-body",
        "truncated-cstr",
        "length-mismatch",
        "truncated-tlv-header",
        "tlv-past-end",
    ],
)
def test_decode_errors_carry_status_and_header(frame: bytes, status: int | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    _, command_id, _, sequence = struct.unpack_from(">IIII", frame)
    assert caught.value.command_id == command_id
    assert caught.value.sequence_number == sequence
    if status is None:
        assert caught.value.fatal
    else:
        assert not caught.value.fatal
        assert caught.value.command_status == status


@pytest.mark.parametrize(
    "pdu",
    [
        BindTransceiver(system_id="x" * 16),
        SubmitSm(destination_addr="1" * 21),
        SubmitSm(destination_addr="a\x00b"),
        SubmitSm(destination_addr="Ж"),
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(esm_class=256),
        DeliverSm(tlvs=(Tlv(0x0424, b"x" * 0x10000),)),
    ],
    ids=["cstr-full", "addr-long", "addr-nul", "addr-not-latin1", "sm-long", "u8", "tlv-long"],
)
def test_encode_refuses_what_the_wire_cannot_carry(pdu: Pdu) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        encode(pdu)


# -- hypothesis: valid PDUs round-trip, anything else parses or raises ProtocolError --------

U32 = st.integers(0, 0xFFFFFFFF)
VENDOR_TAGS = [int(tag) for tag in TlvTag] + [0x1400, 0x1401, 0x2005, 0x3FFF, 0xFFFF, 0x0000]
TLVS = st.lists(
    st.builds(
        Tlv,
        st.one_of(st.sampled_from(VENDOR_TAGS), st.integers(0, 0xFFFF)),
        st.binary(max_size=300),
    ),
    max_size=5,
).map(tuple)


def _field(kind: Kind, size: int) -> st.SearchStrategy[Any]:
    if kind is Kind.U8:
        return st.integers(0, 0xFF)
    if kind is Kind.U32:
        return U32
    if kind is Kind.CSTR:
        return st.text(st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=size - 1)
    return st.binary(max_size=size)


def _pdus_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    fields = {name: _field(kind, size) for name, kind, size in cls.FIELDS}
    if cls.ALLOWS_TLVS:
        fields["tlvs"] = TLVS
    full = st.builds(cls, sequence_number=U32, command_status=U32, **fields)
    if not cls.BODY_ONLY_ON_SUCCESS:
        return full
    # An error response carries no body, so only its header can round-trip.
    ok = st.builds(cls, sequence_number=U32, command_status=st.just(0), **fields)
    error = st.builds(cls, sequence_number=U32, command_status=st.integers(1, 0xFFFFFFFF))
    return st.one_of(ok, error)


PDUS = st.sampled_from(sorted(PDU_CLASSES.values(), key=lambda cls: cls.command_id)).flatmap(
    _pdus_of
)


@given(PDUS)
@settings(max_examples=400)
def test_any_valid_pdu_round_trips(pdu: Pdu) -> None:
    frame = encode(pdu)
    assert decode(frame) == pdu
    assert FrameDecoder().feed(frame) == [frame]


# -- hypothesis: submit_sm and deliver_sm have an encoder of their own ----------------------


def _loose_field(kind: Kind, size: int) -> st.SearchStrategy[Any]:
    """Values of the field's type that fit it and, as often, that do not."""
    if kind is Kind.U8:
        return st.one_of(st.integers(0, 0xFF), st.integers(-2, 0x200), st.booleans())
    if kind is Kind.CSTR:
        near = st.sampled_from("\x00\x01 0aZ\x7f\x80\xffЖ€")
        return st.one_of(
            st.text(st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=size - 1),
            st.text(st.one_of(near, st.characters()), max_size=size + 2),
        )
    return st.binary(max_size=size + 2)


def _loose_short_messages(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    fields = {name: _loose_field(kind, size) for name, kind, size in cls.FIELDS}
    tlvs = st.one_of(st.just(()), TLVS, st.just((Tlv(0x0424, b"x" * 0x10000),)))
    return st.builds(cls, sequence_number=U32, command_status=U32, tlvs=tlvs, **fields)


def _outcome(encoder: Any, pdu: Pdu) -> bytes | tuple[type[BaseException], str]:
    try:
        frame: bytes = encoder(pdu)
    except Exception as exc:  # the two encoders must fail alike
        return type(exc), str(exc)
    return frame


@given(st.one_of(_loose_short_messages(SubmitSm), _loose_short_messages(DeliverSm)))
@settings(max_examples=1000)
def test_short_message_encoder_equals_the_general_one(pdu: Pdu) -> None:
    """Byte for byte on what fits, the same error on what does not."""
    assert _outcome(encode, pdu) == _outcome(_encode_general, pdu)


@given(st.one_of(_pdus_of(SubmitSm), _pdus_of(DeliverSm)))
@settings(max_examples=500)
def test_short_message_encoder_equals_the_general_one_on_valid_pdus(pdu: Pdu) -> None:
    assert encode(pdu) == _encode_general(pdu)


@pytest.mark.parametrize("pdu", [p for p in SAMPLES if type(p) in (SubmitSm, DeliverSm)])
def test_short_message_samples_encode_alike(pdu: Pdu) -> None:
    assert encode(pdu) == _encode_general(pdu)


@given(st.lists(PDUS, min_size=1, max_size=5), st.data())
@settings(max_examples=60)
def test_stream_of_valid_pdus_splits_back(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(encode(pdu) for pdu in pdus)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    bounds = [0, *sorted(cuts), len(stream)]
    decoder = FrameDecoder()
    decoded: list[Pdu] = []
    for start, end in itertools.pairwise(bounds):
        decoded += [decode(frame) for frame in decoder.feed(stream[start:end])]
    assert decoded == pdus


def _decoded(frame: bytes) -> Pdu | ProtocolError:
    try:
        return decode(frame)
    except ProtocolError as exc:
        return exc


def _parse_all(data: bytes, max_frame_size: int = 4096) -> ProtocolError | None:
    """Check everything ``data`` holds; returns the framing error that ended the stream."""
    try:
        frames = FrameDecoder(max_frame_size).feed(data)
    except ProtocolError as exc:
        return exc
    for frame in frames:
        outcome = _decoded(frame)
        if isinstance(outcome, ProtocolError):
            _, command_id, _, sequence = peek_header(frame)
            assert outcome.fatal or (outcome.command_id, outcome.sequence_number) == (
                command_id,
                sequence,
            )
        else:
            _assert_canonical(frame, outcome)
    return None


def _assert_canonical(frame: bytes, pdu: Pdu) -> None:
    # A frame we accept is the encoding of what we read, except responses whose body is
    # optional (a success without body, an error with one).
    if type(pdu).BODY_ONLY_ON_SUCCESS:
        assert decode(encode(pdu)).sequence_number == pdu.sequence_number
    else:
        assert encode(pdu) == frame


def _mutations(frame: bytes) -> st.SearchStrategy[bytes]:
    def set_length(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data[4:]

    index = st.integers(0, len(frame) - 1)
    return st.one_of(
        st.tuples(index, st.integers(0, 255)).map(
            lambda change: frame[: change[0]] + bytes([change[1]]) + frame[change[0] + 1 :]
        ),
        st.integers(16, len(frame)).map(lambda end: set_length(frame[:end])),
        st.binary(min_size=1, max_size=40).map(lambda tail: set_length(frame + tail)),
        st.integers(0, len(frame)).map(lambda end: frame[:end]),
    )


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    error = _parse_all(data)
    assert error is None or error.fatal


@given(PDUS.map(encode).flatmap(_mutations))
@settings(max_examples=400)
def test_mutated_frames_parse_or_raise_protocol_error(data: bytes) -> None:
    error = _parse_all(data)
    assert error is None or error.fatal


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.binary(max_size=64))
@settings(max_examples=200)
def test_any_header_parses_or_raises_protocol_error(
    command_id: int, sequence: int, body: bytes
) -> None:
    frame = struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body
    outcome = _decoded(frame)
    if isinstance(outcome, Pdu):
        assert (outcome.command_id, outcome.sequence_number) == (command_id, sequence)
        return
    assert outcome.sequence_number == sequence
    assert command_id in PDU_CLASSES or outcome.command_status == CommandStatus.ESME_RINVCMDID
