"""Our SMPP on the wire, read by tshark's SMPP dissector (Wireshark, written by others).

Two captures: a real one, taken on the loopback interface while an ESME and an SMSC
``SmppConnection`` talk over TCP (needs the right to capture: root, or dumpcap's
capabilities), and one written here as a pcap, with correct IPv4 and TCP checksums, from the
bytes two in-memory sessions exchange (needs only tshark). tshark must read every PDU as
SMPP, with the command ids, sequence numbers and statuses we sent, our texts, and neither a
malformed packet nor an expert warning.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from gateway.smpp.codec import FrameDecoder, decode, encode
from gateway.smpp.constants import CommandId, CommandStatus, TlvTag
from gateway.smpp.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    tlv_cstr,
    tlv_u8,
    tlv_u16,
)
from gateway.smpp.session import RequestReceived, Role, Session, SessionSettings
from gateway.smpp.textcoding import encode_gsm7
from gateway.smpp_io.smpp_connection import SmppConnection

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

GSM_TEXT = "Hello €uro {x} @home ÄÖ§"
UCS2_TEXT = "Привет, мир!"
FIELDS = (
    "frame.number",
    "smpp.command_id",
    "smpp.sequence_number",
    "smpp.command_status",
    "smpp.message_text",
    "smpp.receipted_message_id",
    "smpp.opt_param_tag",
    "smpp.vendor_op",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
)
WARNING = 0x00600000  # expert severities: chat 0x200000, note 0x400000, warning, error


def _receipt(message_id: str) -> DeliverSm:
    text = f"id:{message_id} sub:001 dlvrd:001 submit date:1108202241 done date:1108202241 "
    return DeliverSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="79231234567",
        destination_addr="SMSC",
        esm_class=0x04,
        short_message=(text + "stat:DELIVRD err:000").encode("ascii"),
        tlvs=(
            tlv_cstr(TlvTag.RECEIPTED_MESSAGE_ID, message_id),
            tlv_u8(TlvTag.MESSAGE_STATE, 2),
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x00"),
            tlv_cstr(TlvTag.SMSC_COST, "1.45"),
            tlv_u16(TlvTag.SMSC_FLAGS, 0x0104),
            tlv_u16(TlvTag.SMSC_PARTS, 1),
            tlv_cstr(TlvTag.SMSC_MCCMNC, "25002"),
            tlv_u16(TlvTag.SMSC_EXTRA_STATUS, 2),
        ),
    )


SUBMITS = (
    SubmitSm(
        source_addr_ton=5,
        source_addr="SMSC",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79231234567",
        registered_delivery=1,
        short_message=encode_gsm7(GSM_TEXT),
    ),
    SubmitSm(
        destination_addr="79231234567",
        registered_delivery=1,
        data_coding=8,
        short_message=UCS2_TEXT.encode("utf-16-be"),
    ),
)


# -- reading a capture -----------------------------------------------------------------


def _dissect(pcap: Path, port: int, *, check_checksums: bool) -> list[dict[str, list[str]]]:
    """Every packet's fields of interest; checksums are checked on request (a loopback
    capture has none: the kernel leaves them to a network card that is not there)."""
    assert TSHARK is not None
    fields = [argument for name in FIELDS for argument in ("-e", name)]
    checks = f"ip.check_checksum:{check_checksums},tcp.check_checksum:{check_checksums}"
    options = [argument for option in checks.split(",") for argument in ("-o", option)]
    result = subprocess.run(
        [
            *[TSHARK, "-r", str(pcap), "-d", f"tcp.port=={port},smpp", *options],
            *["-o", "smpp.decode_sms_over_smpp:GSM 7-bit", "-T", "json", *fields],
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        timeout=60,
    )
    return [packet["_source"]["layers"] for packet in json.loads(result.stdout)]


def _smpp_pdus(packets: list[dict[str, list[str]]]) -> list[tuple[int, int, int]]:
    """(command_id, sequence_number, command_status) of every PDU tshark read, in order."""
    pdus: list[tuple[int, int, int]] = []
    for layers in packets:
        commands = [int(value, 16) for value in layers.get("smpp.command_id", [])]
        sequences = [int(value) for value in layers.get("smpp.sequence_number", [])]
        # tshark shows command_status on responses only.
        statuses = iter(int(value, 16) for value in layers.get("smpp.command_status", []))
        assert len(commands) == len(sequences)
        for command, sequence in zip(commands, sequences, strict=True):
            status = next(statuses) if command & 0x80000000 else 0
            pdus.append((command, sequence, status))
    return pdus


def _assert_clean(packets: list[dict[str, list[str]]]) -> None:
    malformed = [layers["frame.number"] for layers in packets if "_ws.malformed" in layers]
    assert malformed == []
    experts = [
        (layers["frame.number"][0], message)
        for layers in packets
        for severity, message in zip(
            layers.get("_ws.expert.severity", []),
            layers.get("_ws.expert.message", []),
            strict=True,
        )
        if int(severity) >= WARNING
    ]
    assert experts == []


def _all(packets: list[dict[str, list[str]]], name: str) -> list[str]:
    return [value for layers in packets for value in layers.get(name, [])]


def _assert_receipts_read(packets: list[dict[str, list[str]]], message_ids: list[str]) -> None:
    assert _all(packets, "smpp.receipted_message_id") == message_ids
    tags = {int(tag, 16) for tag in _all(packets, "smpp.opt_param_tag")}
    assert tags >= {0x001E, 0x0427, 0x0423, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004}
    # tshark shows vendor TLVs as raw values: they are the octets we put there.
    assert _all(packets, "smpp.vendor_op")[:5] == [
        "312e343500",
        "0104",
        "0001",
        "323530303200",
        "0002",
    ]


# -- a real session, captured on the loopback interface ---------------------------------


class _Smsc:
    """An SMSC built from the gateway's own adapter: answers and sends a receipt per submit."""

    def __init__(self) -> None:
        self.receipts: list[asyncio.Task[Pdu]] = []
        self.message_ids: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        session = Session(
            Role.SMSC, SessionSettings(enquire_link_interval_seconds=None), loop.time()
        )
        connection = SmppConnection(
            session, reader, writer, lambda pdu: self.answer(connection, pdu), name="smsc"
        )
        await connection.run()

    def answer(self, connection: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, BindTransceiver):
            bound = BindTransceiverResp(
                system_id="SMSC", tlvs=(tlv_u8(TlvTag.SC_INTERFACE_VERSION, 0x34),)
            )
            connection.respond(pdu, bound)
        elif isinstance(pdu, SubmitSm):
            message_id = str(854019 + len(self.message_ids))
            self.message_ids.append(message_id)
            connection.respond(pdu, SubmitSmResp(message_id=message_id))
            self.receipts.append(asyncio.create_task(connection.request(_receipt(message_id))))
        elif isinstance(pdu, QuerySm):
            state = QuerySmResp(
                message_id=pdu.message_id, final_date="110820224100000+", message_state=2
            )
            connection.respond(pdu, state)


async def _esme_session(port: int, smsc: _Smsc) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    config = SessionSettings(enquire_link_interval_seconds=0.3, response_timeout_seconds=5.0)
    received: list[Pdu] = []

    def on_request(pdu: Pdu) -> None:
        received.append(pdu)
        connection.respond(pdu, DeliverSmResp())

    connection = SmppConnection(Session(Role.ESME, config, loop.time()), reader, writer, on_request)
    runner = asyncio.create_task(connection.run())
    assert (
        await connection.request(BindTransceiver(system_id="gw", password="secret"))
    ).command_status == 0
    responses = [await connection.request(submit) for submit in SUBMITS]
    assert [resp.command_status for resp in responses] == [0, 0]
    receipts = await asyncio.wait_for(asyncio.gather(*smsc.receipts), 5.0)
    assert [resp.command_status for resp in receipts] == [0, 0]
    await connection.request(QuerySm(message_id=smsc.message_ids[0], source_addr="SMSC"))
    await asyncio.sleep(0.45)  # idle long enough for the session's own enquire_link
    await connection.unbind()
    await asyncio.wait_for(runner, 5.0)
    ids = [pdu.tlv(TlvTag.RECEIPTED_MESSAGE_ID) for pdu in received]
    assert [tlv.as_str() if tlv else None for tlv in ids] == smsc.message_ids


async def _start_capture(port: int, pcap: Path) -> asyncio.subprocess.Process:
    assert TSHARK is not None
    capture = await asyncio.create_subprocess_exec(
        *[TSHARK, "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert capture.stderr is not None
    said: list[str] = []
    try:
        while line := await asyncio.wait_for(capture.stderr.readline(), 20.0):
            said.append(line.decode(errors="replace"))
            if line.startswith(b"Capturing on"):
                await asyncio.sleep(0.3)  # let dumpcap settle on the interface
                return capture
    except TimeoutError:
        capture.kill()
    await capture.wait()
    pytest.skip("cannot capture on lo (needs root or dumpcap's capabilities): " + "".join(said))


async def _stop_capture(capture: asyncio.subprocess.Process) -> None:
    await asyncio.sleep(0.5)  # the last segments reach dumpcap
    capture.send_signal(signal.SIGINT)
    await asyncio.wait_for(capture.wait(), 20.0)


async def test_captured_session_reads_as_smpp(tmp_path: Path) -> None:
    smsc = _Smsc()
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pcap = tmp_path / "session.pcapng"
    capture = await _start_capture(port, pcap)
    try:
        await _esme_session(port, smsc)
    finally:
        await _stop_capture(capture)
        server.close()
        await server.wait_closed()

    packets = _dissect(pcap, port, check_checksums=False)
    _assert_clean(packets)
    commands = Counter(CommandId(command) for command, _, _ in _smpp_pdus(packets))
    enquiries = commands[CommandId.ENQUIRE_LINK]
    assert enquiries >= 1
    assert commands == Counter(
        {
            CommandId.BIND_TRANSCEIVER: 1,
            CommandId.BIND_TRANSCEIVER_RESP: 1,
            CommandId.SUBMIT_SM: 2,
            CommandId.SUBMIT_SM_RESP: 2,
            CommandId.DELIVER_SM: 2,
            CommandId.DELIVER_SM_RESP: 2,
            CommandId.QUERY_SM: 1,
            CommandId.QUERY_SM_RESP: 1,
            CommandId.ENQUIRE_LINK: enquiries,
            CommandId.ENQUIRE_LINK_RESP: enquiries,
            CommandId.UNBIND: 1,
            CommandId.UNBIND_RESP: 1,
        }
    )
    assert all(status == 0 for _, _, status in _smpp_pdus(packets))
    receipts = [_receipt(message_id).short_message.decode() for message_id in smsc.message_ids]
    assert sorted(_all(packets, "smpp.message_text")) == sorted([GSM_TEXT, UCS2_TEXT, *receipts])
    _assert_receipts_read(packets, smsc.message_ids)


# -- a pcap written from two in-memory sessions ----------------------------------------


def _checksum(data: bytes) -> int:
    padded = data + b"\x00" * (len(data) % 2)
    words: tuple[int, ...] = struct.unpack(f"!{len(padded) // 2}H", padded)
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _segment(
    src: tuple[bytes, int],
    dst: tuple[bytes, int],
    *,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes,
) -> bytes:
    """One Ethernet frame holding an IPv4 TCP segment, checksums included."""
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = src[0] + dst[0] + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:] + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src[0], dst[0])
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp


SYN, FIN, PSH_ACK, ACK, SYN_ACK, FIN_ACK = 0x02, 0x01, 0x18, 0x10, 0x12, 0x11


def _pcap(chunks: list[tuple[Role, bytes]], port: int) -> bytes:
    """A TCP connection (handshake, one segment per chunk, close) as a classic pcap file."""
    ends = {Role.ESME: (bytes([10, 0, 0, 1]), 40001), Role.SMSC: (bytes([10, 0, 0, 2]), port)}
    sent = {Role.ESME: 1000, Role.SMSC: 5000}
    other = {Role.ESME: Role.SMSC, Role.SMSC: Role.ESME}
    frames: list[bytes] = []

    def emit(role: Role, flags: int, payload: bytes = b"", ack: bool = True) -> None:
        acked = sent[other[role]] if ack else 0
        frames.append(
            _segment(
                ends[role],
                ends[other[role]],
                seq=sent[role],
                ack=acked,
                flags=flags,
                payload=payload,
            )
        )
        sent[role] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    emit(Role.ESME, SYN, ack=False)
    emit(Role.SMSC, SYN_ACK)
    emit(Role.ESME, ACK)
    for role, data in chunks:
        emit(role, PSH_ACK, data)
    emit(Role.ESME, FIN_ACK)
    emit(Role.SMSC, FIN_ACK)
    emit(Role.ESME, ACK)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # linktype Ethernet
    records = [
        struct.pack("<IIII", 1_700_000_000, index * 1000, len(frame), len(frame)) + frame
        for index, frame in enumerate(frames)
    ]
    return header + b"".join(records)


def _cancel_sm(sequence: int) -> bytes:
    """A valid cancel_sm, an operation the gateway does not speak (SMPP 3.4 section 4.9)."""
    body = b"\x00854019\x00\x05\x01SMSC\x00\x01\x0179231234567\x00"
    return struct.pack(">IIII", 16 + len(body), 0x00000008, 0, sequence) + body


def _in_memory_conversation() -> list[tuple[Role, bytes]]:
    now = 0.0
    sessions = {
        Role.ESME: Session(Role.ESME, SessionSettings(enquire_link_interval_seconds=30.0), now),
        Role.SMSC: Session(Role.SMSC, SessionSettings(enquire_link_interval_seconds=None), now),
    }
    chunks: list[tuple[Role, bytes]] = []

    def pump() -> list[Pdu]:
        requests: list[Pdu] = []
        while True:
            moved = False
            for role, peer in ((Role.ESME, Role.SMSC), (Role.SMSC, Role.ESME)):
                if data := sessions[role].data_to_send():
                    chunks.append((role, data))
                    events = sessions[peer].receive_data(data, now)
                    requests += [e.pdu for e in events if isinstance(e, RequestReceived)]
                    moved = True
            if not moved:
                return requests

    esme, smsc = sessions[Role.ESME], sessions[Role.SMSC]
    esme.send(BindTransceiver(system_id="gw", password="secret"), now)
    (bind,) = pump()
    smsc.respond(bind, BindTransceiverResp(system_id="SMSC"), now)
    pump()
    for submit in SUBMITS:
        esme.send(submit, now)
    first, second = pump()
    smsc.respond(first, SubmitSmResp(message_id="854019"), now)
    smsc.respond(second, SubmitSmResp(command_status=CommandStatus.ESME_RTHROTTLED), now)
    smsc.send(_receipt("854019"), now)
    (receipt,) = pump()
    esme.respond(receipt, DeliverSmResp(), now)
    esme.send(QuerySm(message_id="854019", source_addr="SMSC"), now)
    (query,) = pump()
    smsc.respond(query, QuerySmResp(message_id="854019", message_state=2), now)
    chunks.append((Role.ESME, _cancel_sm(90)))
    smsc.receive_data(_cancel_sm(90), now)  # answered with generic_nack ESME_RINVCMDID
    pump()
    now += 30.0
    esme.handle_timer(now)  # idle: enquire_link, answered by the SMSC session itself
    pump()
    esme.unbind(now)
    pump()
    return chunks


def _sent(chunks: list[tuple[Role, bytes]]) -> list[tuple[int, int, int]]:
    decoders = {Role.ESME: FrameDecoder(), Role.SMSC: FrameDecoder()}
    pdus: list[tuple[int, int, int]] = []
    for role, data in chunks:
        for frame in decoders[role].feed(data):
            _, command_id, status, sequence = struct.unpack_from(">IIII", frame)
            pdus.append((command_id, sequence, status))
    return pdus


def test_written_pcap_reads_as_smpp(tmp_path: Path) -> None:
    port = 2775
    chunks = _in_memory_conversation()
    pcap = tmp_path / "session.pcap"
    pcap.write_bytes(_pcap(chunks, port))

    packets = _dissect(pcap, port, check_checksums=True)
    _assert_clean(packets)
    assert _smpp_pdus(packets) == _sent(chunks)
    commands = {CommandId(command) for command, _, _ in _sent(chunks) if command != 0x00000008}
    assert commands == set(CommandId) - {
        CommandId.BIND_TRANSMITTER,
        CommandId.BIND_TRANSMITTER_RESP,
        CommandId.BIND_RECEIVER,
        CommandId.BIND_RECEIVER_RESP,
    }
    assert (CommandId.GENERIC_NACK, 90, CommandStatus.ESME_RINVCMDID) in _sent(chunks)
    assert _all(packets, "smpp.message_text")[:2] == [GSM_TEXT, UCS2_TEXT]
    _assert_receipts_read(packets, ["854019"])


def test_written_pcap_checksums_are_checked() -> None:
    # The clean verdict above means something only if tshark would see a bad checksum.
    payload = encode(SUBMITS[0])
    frame = _segment((bytes(4), 1), (bytes(4), 2), seq=0, ack=0, flags=PSH_ACK, payload=payload)
    ip, tcp = frame[14:34], frame[34:]
    assert _checksum(ip) == 0
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    assert _checksum(pseudo + tcp) == 0
    assert decode(tcp[20:]) == SUBMITS[0]
