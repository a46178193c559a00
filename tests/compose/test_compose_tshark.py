"""Composed parts read by tshark's SMPP and GSM SMS dissectors (Wireshark, written by others).

The parts are encoded with the project's codec and written as TCP segments of a pcap;
tshark must find the concatenation header (reference, total, part number) or the sar_*
TLVs we put there, the data coding and message class, and each part's text, which joined in
order must give the message back. tshark decodes UCS2 strictly as UCS-2, so the texts here
stay in the Basic Multilingual Plane.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from gateway.compose import ComposedMessage, CompositionSettings
from gateway.smpp.codec import encode
from tests.compose.composecheck import compose

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
PORT = 2775
FIELDS = (
    "smpp.message_text",
    "smpp.data_coding",
    "smpp.message",
    "gsm_sms.udh.mm.msg_id",
    "gsm_sms.udh.mm.msg_parts",
    "gsm_sms.udh.mm.msg_part",
    "smpp.sar_msg_ref_num",
    "smpp.sar_total_segments",
    "smpp.sar_segment_seqnum",
    "smpp.message_payload",
    "_ws.malformed",
)
GSM_TEXT = "Hello {world}, 5€ [ok] ~ " * 14
UCS2_TEXT = "Привет, мир! Ёжик в тумане. " * 9


def _pcap(payloads: list[bytes]) -> bytes:
    """One TCP segment per payload, ESME to SMSC; tshark is told to skip checksums."""
    frames = []
    sequence = 1000
    for payload in payloads:
        tcp = struct.pack("!HHIIBBHHH", 40001, PORT, sequence, 1, 5 << 4, 0x18, 65535, 0, 0)
        sequence += len(payload)
        size = 20 + len(tcp) + len(payload)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, size, 0, 0x4000, 64, 6, 0, b"\n\0\0\1", b"\n\0\0\2"
        )
        frames.append(b"\2\0\0\0\0\2\2\0\0\0\0\1\x08\0" + ip + tcp + payload)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = [
        struct.pack("<IIII", 1_700_000_000, index, len(frame), len(frame)) + frame
        for index, frame in enumerate(frames)
    ]
    return header + b"".join(records)


def _dissect(composed: ComposedMessage, tmp_path: Path) -> list[dict[str, list[str]]]:
    assert TSHARK is not None
    pdus = [
        encode(dataclasses.replace(pdu, sequence_number=number))
        for number, pdu in enumerate(composed.parts, start=1)
    ]
    pcap = tmp_path / "parts.pcap"
    pcap.write_bytes(_pcap(pdus))
    options = ["tcp.check_checksum:FALSE", "ip.check_checksum:FALSE", "smpp.gsm7_unpacked:TRUE"]
    options.append("smpp.decode_sms_over_smpp:GSM 7-bit")
    result = subprocess.run(
        [
            *[TSHARK, "-r", str(pcap), "-d", f"tcp.port=={PORT},smpp", "-T", "json"],
            *[argument for option in options for argument in ("-o", option)],
            *[argument for name in FIELDS for argument in ("-e", name)],
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    packets = json.loads(result.stdout.decode("utf-8"))
    layers = [packet["_source"]["layers"] for packet in packets]
    assert len(layers) == composed.part_count
    assert all("_ws.malformed" not in layer for layer in layers)
    return layers


def _one(layer: dict[str, list[str]], name: str) -> str:
    (value,) = layer[name]
    return value


@pytest.mark.parametrize(
    ("text", "bits", "coding"), [(GSM_TEXT, 8, "0x00"), (UCS2_TEXT, 16, "0x08")]
)
def test_concatenation_header_is_read(text: str, bits: int, coding: str, tmp_path: Path) -> None:
    settings = CompositionSettings(reference_bits=bits)
    composed = compose(settings, reference=0x1234, text=text)
    assert composed.part_count > 2
    layers = _dissect(composed, tmp_path)
    total = str(composed.part_count)
    assert [_one(layer, "gsm_sms.udh.mm.msg_part") for layer in layers] == [
        str(number) for number in range(1, composed.part_count + 1)
    ]
    assert {_one(layer, "gsm_sms.udh.mm.msg_parts") for layer in layers} == {total}
    assert {_one(layer, "gsm_sms.udh.mm.msg_id") for layer in layers} == {
        str(0x34 if bits == 8 else 0x1234)
    }
    assert {_one(layer, "smpp.data_coding") for layer in layers} == {coding}
    assert "".join(_one(layer, "smpp.message_text") for layer in layers) == text


def test_sar_tlvs_are_read(tmp_path: Path) -> None:
    composed = compose(CompositionSettings(split="sar"), reference=0x1234, text=UCS2_TEXT)
    layers = _dissect(composed, tmp_path)
    assert [_one(layer, "smpp.sar_segment_seqnum") for layer in layers] == [
        str(number) for number in range(1, composed.part_count + 1)
    ]
    assert {_one(layer, "smpp.sar_total_segments") for layer in layers} == {
        str(composed.part_count)
    }
    assert {_one(layer, "smpp.sar_msg_ref_num") for layer in layers} == {str(0x1234)}
    assert "".join(_one(layer, "smpp.message_text") for layer in layers) == UCS2_TEXT


def test_message_payload_is_read(tmp_path: Path) -> None:
    composed = compose(CompositionSettings(split="payload"), text=UCS2_TEXT)
    (layer,) = _dissect(composed, tmp_path)
    assert bytes.fromhex(_one(layer, "smpp.message_payload")) == UCS2_TEXT.encode("utf-16-be")
    assert _one(layer, "smpp.message_text") == UCS2_TEXT


def test_flash_travels_as_gsm_dcs_class_0(tmp_path: Path) -> None:
    # 0x10 is GSM 03.38's "general data coding, class 0" (kannel's default for flash);
    # tshark's SMPP 3.4 table calls it reserved and leaves the octets undecoded.
    (layer,) = _dissect(compose(channel="flash", text="Alert"), tmp_path)
    assert _one(layer, "smpp.data_coding") == "0x10"
    assert _one(layer, "smpp.message") == "416c657274"
