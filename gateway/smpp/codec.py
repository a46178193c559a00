"""Bytes to PDUs and back, and the framing of a TCP byte stream into PDUs.

Pure functions over ``bytes``: no sockets, clocks or logging. Every malformed input raises
:class:`~gateway.smpp.errors.ProtocolError` and nothing else.
"""

from __future__ import annotations

import struct
from typing import Any

from .constants import HEADER_SIZE, CommandStatus
from .errors import ProtocolError
from .pdu import PDU_CLASSES, Kind, Pdu, Tlv

_HEADER = struct.Struct(">IIII")
_TLV_HEADER = struct.Struct(">HH")
DEFAULT_MAX_FRAME_SIZE = 64 * 1024


def encode(pdu: Pdu) -> bytes:
    """The PDU's wire form, header included.

    Raises ``ValueError`` when a field does not fit its wire size: the caller built a PDU the
    specification does not allow, which is a programming error, not the peer's.
    """
    body = bytearray()
    if not (pdu.BODY_ONLY_ON_SUCCESS and pdu.command_status != 0):
        _encode_body(pdu, body)
        for tlv in pdu.tlvs:
            if len(tlv.value) > 0xFFFF:
                raise ValueError(f"TLV 0x{tlv.tag:04X} value longer than 65535 octets")
            body += _TLV_HEADER.pack(tlv.tag, len(tlv.value))
            body += tlv.value
    header = _HEADER.pack(
        HEADER_SIZE + len(body), pdu.command_id, pdu.command_status, pdu.sequence_number
    )
    return header + bytes(body)


def _encode_body(pdu: Pdu, out: bytearray) -> None:
    for name, kind, size in pdu.FIELDS:
        value = getattr(pdu, name)
        if kind is Kind.U8:
            out.append(value)
        elif kind is Kind.U32:
            out += value.to_bytes(4, "big")
        elif kind is Kind.CSTR:
            raw = value.encode("latin-1")
            if len(raw) >= size or b"\x00" in raw:
                raise ValueError(f"{name} does not fit a C-Octet String of {size} octets")
            out += raw
            out.append(0)
        else:  # Kind.SM
            if len(value) > size:
                raise ValueError(f"{name} longer than {size} octets; use message_payload")
            out.append(len(value))
            out += value


def peek_header(frame: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) of a frame."""
    if len(frame) < HEADER_SIZE:
        raise ProtocolError("frame shorter than the 16-octet header", fatal=True)
    length, command_id, status, sequence = _HEADER.unpack_from(frame)
    return length, command_id, status, sequence


def decode(frame: bytes) -> Pdu:
    """The PDU in one complete frame (as :class:`FrameDecoder` yields them)."""
    length, command_id, status, sequence = peek_header(frame)
    if length != len(frame):
        raise ProtocolError(
            f"command_length {length} does not match the frame's {len(frame)} octets",
            command_id=command_id,
            sequence_number=sequence,
            fatal=True,
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise ProtocolError(
            f"unknown command_id 0x{command_id:08X}",
            command_status=CommandStatus.ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=sequence,
        )
    try:
        values, offset = _decode_body(cls, frame, status)
        tlvs = _decode_tlvs(frame, offset) if cls.ALLOWS_TLVS else ()
    except _BodyError as exc:
        raise ProtocolError(
            f"{cls.__name__}: {exc}",
            command_status=exc.status,
            command_id=command_id,
            sequence_number=sequence,
        ) from None
    if not cls.ALLOWS_TLVS and offset != len(frame):
        raise ProtocolError(
            f"{cls.__name__}: {len(frame) - offset} octets after the body",
            command_id=command_id,
            sequence_number=sequence,
        )
    return cls(sequence_number=sequence, command_status=status, tlvs=tlvs, **values)


class _BodyError(Exception):
    def __init__(self, message: str, status: int = CommandStatus.ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


def _decode_body(cls: type[Pdu], frame: bytes, status: int) -> tuple[dict[str, Any], int]:
    offset = HEADER_SIZE
    end = len(frame)
    values: dict[str, Any] = {}
    if cls.BODY_ONLY_ON_SUCCESS and offset == end:
        # An error response carries no body (4.1.2); some peers omit it on success too.
        return values, offset
    for name, kind, size in cls.FIELDS:
        if kind is Kind.CSTR:
            nul = frame.find(b"\x00", offset, min(end, offset + size))
            if nul < 0:
                raise _BodyError(f"{name} is not a NUL-terminated string of at most {size}")
            values[name] = frame[offset:nul].decode("latin-1")
            offset = nul + 1
        elif kind is Kind.U8:
            if offset >= end:
                raise _BodyError(f"body ends before {name}")
            values[name] = frame[offset]
            offset += 1
        elif kind is Kind.U32:
            if offset + 4 > end:
                raise _BodyError(f"body ends before {name}")
            values[name] = int.from_bytes(frame[offset : offset + 4], "big")
            offset += 4
        else:  # Kind.SM
            if offset >= end:
                raise _BodyError(f"body ends before {name}")
            sm_length = frame[offset]
            offset += 1
            if offset + sm_length > end:
                raise _BodyError(f"sm_length {sm_length} runs past the body")
            values[name] = frame[offset : offset + sm_length]
            offset += sm_length
    return values, offset


def _decode_tlvs(frame: bytes, offset: int) -> tuple[Tlv, ...]:
    tlvs: list[Tlv] = []
    end = len(frame)
    while offset < end:
        if offset + 4 > end:
            raise _BodyError("truncated TLV header", CommandStatus.ESME_RINVOPTPARSTREAM)
        tag, length = _TLV_HEADER.unpack_from(frame, offset)
        offset += 4
        if offset + length > end:
            raise _BodyError(
                f"TLV 0x{tag:04X} length {length} runs past the PDU", CommandStatus.ESME_RINVPARLEN
            )
        tlvs.append(Tlv(tag, frame[offset : offset + length]))
        offset += length
    return tuple(tlvs)


class FrameDecoder:
    """Splits a byte stream into whole PDU frames.

    A frame whose declared command_length is below the header size or above
    ``max_frame_size`` is refused as soon as its first four octets arrive, before any of
    its body is buffered; the stream cannot be resynchronised after that, so the error is
    fatal.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < HEADER_SIZE:
            raise ValueError("max_frame_size below the SMPP header size")
        self._max = max_frame_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data`` and return every frame it completes, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:4], "big")
            if length < HEADER_SIZE or length > self._max:
                self._buffer.clear()
                raise ProtocolError(f"command_length {length} outside 16..{self._max}", fatal=True)
            if len(self._buffer) < length:
                break
            frames.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return frames
