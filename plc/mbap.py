"""Modbus/TCP framing checks done before any frame reaches pymodbus (pure, no I/O).

A Modbus/TCP ADU is a 7-byte MBAP header (transaction id, protocol id = 0, length = number
of bytes that follow it, unit id) and a PDU of at most 253 bytes. A stream that breaks
these rules cannot be resynchronised (there is no frame delimiter), so the guard's answer to
a broken header is to drop the connection, as hardware PLCs do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MBAP_HEADER_LEN = 7
MIN_LENGTH_FIELD = 2  # unit id + function code
MAX_LENGTH_FIELD = 254  # unit id + 253-byte PDU
MAX_ADU_LEN = 6 + MAX_LENGTH_FIELD


class ExceptionCode(IntEnum):
    """Modbus exception codes the guard answers itself."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    GATEWAY_TARGET_FAILED = 0x0B


@dataclass(frozen=True)
class Frame:
    """One complete, header-valid ADU."""

    transaction_id: int
    unit_id: int
    pdu: bytes

    @property
    def function_code(self) -> int:
        return self.pdu[0]


class FramingError(ValueError):
    """The byte stream is not Modbus/TCP; the connection must be dropped."""


def split_frames(buffer: bytes) -> tuple[list[Frame], bytes]:
    """Cut every complete ADU off the front of ``buffer``.

    Returns the frames and the unconsumed rest (a partial header or frame).
    Raises FramingError on a non-zero protocol id or a length field outside 2..254.
    """
    frames: list[Frame] = []
    offset = 0
    while len(buffer) - offset >= MBAP_HEADER_LEN:
        tid, protocol_id, length, unit_id = struct.unpack_from(">HHHB", buffer, offset)
        if protocol_id != 0:
            raise FramingError(f"protocol id {protocol_id} is not Modbus")
        if not MIN_LENGTH_FIELD <= length <= MAX_LENGTH_FIELD:
            raise FramingError(f"length field {length} outside "
                               f"{MIN_LENGTH_FIELD}..{MAX_LENGTH_FIELD}")
        end = offset + 6 + length
        if end > len(buffer):
            break
        frames.append(Frame(tid, unit_id, bytes(buffer[offset + MBAP_HEADER_LEN:end])))
        offset = end
    return frames, bytes(buffer[offset:])


# function code -> (PDU length rule, max quantity). Quantities per the Modbus spec.
_READS = {1: 2000, 2: 2000, 3: 125, 4: 125}
_WRITE_SINGLE = (5, 6)
_WRITE_MULTI = {15: 1968, 16: 123}
REPORT_SERVER_ID = 0x11
SUPPORTED_FUNCTIONS = frozenset((*_READS, *_WRITE_SINGLE, *_WRITE_MULTI, REPORT_SERVER_ID))


def check_request(pdu: bytes) -> ExceptionCode | None:
    """Spec checks on a request PDU that pymodbus 3.16 does not make.

    Returns the exception code to answer with, or None when the request may go to the
    datastore (which still answers 0x02 for addresses outside the map).
    """
    fc = pdu[0]
    body = pdu[1:]
    if fc not in SUPPORTED_FUNCTIONS:
        return ExceptionCode.ILLEGAL_FUNCTION
    if fc == REPORT_SERVER_ID:
        return ExceptionCode.ILLEGAL_DATA_VALUE if body else None
    if fc in _READS:
        if len(body) != 4:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        address, count = struct.unpack(">HH", body)
        if not 1 <= count <= _READS[fc] or address + count > 0x10000:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return None
    if fc in _WRITE_SINGLE:
        if len(body) != 4:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        if fc == 5 and body[2:4] not in (b"\xff\x00", b"\x00\x00"):
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return None
    # write multiple: address, quantity, byte count, values
    if len(body) < 5:
        return ExceptionCode.ILLEGAL_DATA_VALUE
    address, count, byte_count = struct.unpack_from(">HHB", body)
    expected = (count + 7) // 8 if fc == 15 else 2 * count
    if (not 1 <= count <= _WRITE_MULTI[fc] or byte_count != expected
            or len(body) != 5 + byte_count or address + count > 0x10000):
        return ExceptionCode.ILLEGAL_DATA_VALUE
    return None


def exception_adu(frame: Frame, code: ExceptionCode) -> bytes:
    """The Modbus/TCP exception response to ``frame``."""
    return adu(frame, bytes(((frame.function_code | 0x80) & 0xFF, int(code))))


def adu(frame: Frame, pdu: bytes) -> bytes:
    """A Modbus/TCP response to ``frame`` carrying ``pdu``."""
    return struct.pack(">HHHB", frame.transaction_id, 0, len(pdu) + 1, frame.unit_id) + pdu


def report_server_id_adu(frame: Frame, server_id: bytes) -> bytes:
    """The answer to Report Server ID (0x11): the id bytes, then run indicator 0xFF (on)."""
    data = server_id[:250] + b"\xff"
    return adu(frame, bytes((REPORT_SERVER_ID, len(data))) + data)
