"""The one Modbus/TCP codec of the project: MBAP header and the PDUs it uses (pure, no I/O).

A Modbus/TCP ADU is a 7-byte MBAP header (transaction id, protocol id = 0, length = number
of bytes that follow it, i.e. unit id + PDU, unit id) and a PDU (function code + data) of at
most 253 bytes, all big-endian. A stream that breaks these rules cannot be resynchronised
(there is no frame delimiter): :class:`FrameError` is the answer to a broken header, and
the PLC guard drops the connection on it, as hardware PLCs do.

Users: the PLC guard (:func:`split_frames`, :func:`check_request`, the response builders),
the attacks (request builders, :func:`parse_reply`), the MITM (:func:`parse_request`,
:func:`parse_response` on relayed PDUs) and recon (Report Server ID).

Why not pymodbus's framer or scapy.contrib.modbus here: pymodbus 3.16's stream framer has
crash bugs on malformed frames (the reason the guard exists) and neither library can build
the deliberately broken frames the fuzzer needs (lying length, bad protocol id); scapy's
layers are still used to build and decode the injection's ``scapy`` engine frames.

What it cannot do: RTU framing (no CRC), or parse replies of functions other than the reads
(1-4), single writes (5, 6), Report Server ID (17) and exceptions.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

MODBUS_PORT = 502

MBAP_HEADER_BYTES = 7
MIN_LENGTH_FIELD = 2  # unit id + function code
MAX_PDU_BYTES = 253
MAX_LENGTH_FIELD = MAX_PDU_BYTES + 1  # unit id + PDU
MAX_ADU_BYTES = MBAP_HEADER_BYTES - 1 + MAX_LENGTH_FIELD
# Every exception reply: MBAP header + function | 0x80 + exception code.
EXCEPTION_REPLY_BYTES = 9
EXCEPTION_BIT = 0x80

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_COIL = 5
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_COILS = 15
WRITE_MULTIPLE_REGISTERS = 16
REPORT_SERVER_ID = 0x11

# The functions the PLCs implement (everything else is answered with exception 0x01), by
# the name the MITM records.
FUNCTION_NAMES = {
    READ_COILS: "read_coils", READ_DISCRETE_INPUTS: "read_discrete_inputs",
    READ_HOLDING_REGISTERS: "read_holding_registers",
    READ_INPUT_REGISTERS: "read_input_registers", WRITE_SINGLE_COIL: "write_coil",
    WRITE_SINGLE_REGISTER: "write_register", WRITE_MULTIPLE_COILS: "write_coils",
    WRITE_MULTIPLE_REGISTERS: "write_registers", REPORT_SERVER_ID: "report_server_id",
}
SUPPORTED_FUNCTIONS = frozenset(FUNCTION_NAMES)
# Largest quantity per request, per the Modbus spec.
READ_MAX_QUANTITY = {READ_COILS: 2000, READ_DISCRETE_INPUTS: 2000,
                     READ_HOLDING_REGISTERS: 125, READ_INPUT_REGISTERS: 125}
READ_FUNCTIONS = frozenset(READ_MAX_QUANTITY)
BIT_READ_FUNCTIONS = frozenset((READ_COILS, READ_DISCRETE_INPUTS))
REGISTER_READ_FUNCTIONS = frozenset((READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS))
WRITE_SINGLE_FUNCTIONS = frozenset((WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER))
WRITE_MULTIPLE_MAX_QUANTITY = {WRITE_MULTIPLE_COILS: 1968, WRITE_MULTIPLE_REGISTERS: 123}
WRITE_FUNCTIONS = WRITE_SINGLE_FUNCTIONS | frozenset(WRITE_MULTIPLE_MAX_QUANTITY)
COIL_ON = 0xFF00
COIL_OFF = 0x0000


class ExceptionCode(IntEnum):
    """Modbus exception codes the PLC guard answers itself."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    GATEWAY_TARGET_FAILED = 0x0B


class FrameError(ValueError):
    """Bytes that are not Modbus/TCP: a broken MBAP header or a malformed reply."""


# --- MBAP framing -----------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One complete, header-valid ADU."""

    transaction_id: int
    unit_id: int
    pdu: bytes

    @property
    def function_code(self) -> int:
        return self.pdu[0]


def mbap(transaction_id: int, pdu: bytes, unit_id: int = 1, protocol_id: int = 0,
         length: int | None = None) -> bytes:
    """An ADU: MBAP header + ``pdu``; ``length`` overrides the true length field (to lie)."""
    true_length = len(pdu) + 1
    return struct.pack(">HHHB", transaction_id & 0xFFFF, protocol_id & 0xFFFF,
                       (true_length if length is None else length) & 0xFFFF,
                       unit_id & 0xFF) + pdu


def split_frames(buffer: bytes) -> tuple[list[Frame], bytes]:
    """Cut every complete ADU off the front of ``buffer``.

    Returns the frames and the unconsumed rest (a partial header or frame).
    Raises FrameError on a non-zero protocol id or a length field outside 2..254.
    """
    frames: list[Frame] = []
    offset = 0
    while len(buffer) - offset >= MBAP_HEADER_BYTES:
        tid, protocol_id, length, unit_id = struct.unpack_from(">HHHB", buffer, offset)
        if protocol_id != 0:
            raise FrameError(f"protocol id {protocol_id} is not Modbus")
        if not MIN_LENGTH_FIELD <= length <= MAX_LENGTH_FIELD:
            raise FrameError(f"length field {length} outside "
                             f"{MIN_LENGTH_FIELD}..{MAX_LENGTH_FIELD}")
        end = offset + 6 + length
        if end > len(buffer):
            break
        frames.append(Frame(tid, unit_id, bytes(buffer[offset + MBAP_HEADER_BYTES:end])))
        offset = end
    return frames, bytes(buffer[offset:])


def join_frames(frames: list[Frame]) -> bytes:
    """The ADUs of ``frames``, back to back (the inverse of :func:`split_frames`)."""
    return b"".join(mbap(f.transaction_id, f.pdu, f.unit_id) for f in frames)


def reply_length(header: bytes) -> int:
    """Total ADU length announced by a 7-byte MBAP header (FrameError when implausible)."""
    if len(header) < MBAP_HEADER_BYTES:
        raise FrameError(f"MBAP header needs {MBAP_HEADER_BYTES} bytes, got {len(header)}")
    _tid, protocol_id, length, _unit = struct.unpack_from(">HHHB", header)
    if protocol_id != 0 or not MIN_LENGTH_FIELD <= length <= MAX_LENGTH_FIELD:
        raise FrameError(f"bad MBAP header: protocol {protocol_id}, length {length}")
    return MBAP_HEADER_BYTES - 1 + length


def recv_exactly(sock: socket.socket, n: int, closed_message: str) -> bytes:
    """``n`` bytes from ``sock``; ConnectionError(``closed_message``) when the peer closes."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(closed_message)
        data += chunk
    return data


def recv_adu(sock: socket.socket, closed_message: str = "connection closed by peer") -> bytes:
    """One whole ADU from a stream socket, framed by its MBAP length (FrameError, OSError)."""
    header = recv_exactly(sock, MBAP_HEADER_BYTES, closed_message)
    return header + recv_exactly(sock, reply_length(header) - MBAP_HEADER_BYTES,
                                 closed_message)


# --- requests ---------------------------------------------------------------------------
def read_request(transaction_id: int, function_code: int, address: int, count: int,
                 unit_id: int = 1) -> bytes:
    """A read request (function 1-4) of ``count`` entries from wire ``address``."""
    if function_code not in READ_FUNCTIONS:
        raise ValueError(f"function {function_code} is not a read (1-4)")
    return mbap(transaction_id, struct.pack(">BHH", function_code, address, count), unit_id)


def write_coil_request(transaction_id: int, address: int, value: bool,
                       unit_id: int = 1) -> bytes:
    """Write Single Coil (function 5): 0xFF00 is on, 0x0000 off."""
    return mbap(transaction_id, struct.pack(">BHH", WRITE_SINGLE_COIL, address,
                                            COIL_ON if value else COIL_OFF), unit_id)


def write_register_request(transaction_id: int, address: int, value: int,
                           unit_id: int = 1) -> bytes:
    """Write Single Register (function 6) of a raw 16-bit ``value``."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"register value {value} outside 0..65535")
    return mbap(transaction_id, struct.pack(">BHH", WRITE_SINGLE_REGISTER, address, value),
                unit_id)


def report_server_id_request(transaction_id: int, unit_id: int) -> bytes:
    """The request for Report Server ID (function 0x11) to ``unit_id``."""
    return mbap(transaction_id, bytes((REPORT_SERVER_ID,)), unit_id)


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
    if fc in READ_FUNCTIONS:
        if len(body) != 4:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        address, count = struct.unpack(">HH", body)
        if not 1 <= count <= READ_MAX_QUANTITY[fc] or address + count > 0x10000:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return None
    if fc in WRITE_SINGLE_FUNCTIONS:
        if len(body) != 4:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        if fc == WRITE_SINGLE_COIL and body[2:4] not in (b"\xff\x00", b"\x00\x00"):
            return ExceptionCode.ILLEGAL_DATA_VALUE
        return None
    # write multiple: address, quantity, byte count, values
    if len(body) < 5:
        return ExceptionCode.ILLEGAL_DATA_VALUE
    address, count, byte_count = struct.unpack_from(">HHB", body)
    expected = (count + 7) // 8 if fc == WRITE_MULTIPLE_COILS else 2 * count
    if (not 1 <= count <= WRITE_MULTIPLE_MAX_QUANTITY[fc] or byte_count != expected
            or len(body) != 5 + byte_count or address + count > 0x10000):
        return ExceptionCode.ILLEGAL_DATA_VALUE
    return None


@dataclass(frozen=True)
class ModbusRequest:
    """A parsed request PDU; ``address``/``count`` are None for functions without them.

    values: the values a write request carries (raw; bits as 0/1).
    """

    function: int
    address: int | None = None
    count: int | None = None
    values: tuple[int, ...] = ()


def unpack_bits(data: bytes, count: int | None = None) -> tuple[int, ...]:
    """Modbus bit packing: LSB of the first byte is the first bit; ``count`` cuts the padding."""
    total = len(data) * 8 if count is None else min(count, len(data) * 8)
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(total))


def parse_request(pdu: bytes) -> ModbusRequest:
    """Parse a request PDU (function code first); unknown or short PDUs keep only the code."""
    if not pdu:
        raise ValueError("empty PDU")
    fc = pdu[0]
    body = pdu[1:]
    try:
        if fc in READ_FUNCTIONS:
            address, count = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, count)
        if fc == WRITE_SINGLE_COIL:
            address, raw = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, 1, (1 if raw == COIL_ON else 0,))
        if fc == WRITE_SINGLE_REGISTER:
            address, raw = struct.unpack_from(">HH", body)
            return ModbusRequest(fc, address, 1, (raw,))
        if fc == WRITE_MULTIPLE_COILS:
            address, count, n_bytes = struct.unpack_from(">HHB", body)
            return ModbusRequest(fc, address, count, unpack_bits(body[5:5 + n_bytes], count))
        if fc == WRITE_MULTIPLE_REGISTERS:
            address, count, n_bytes = struct.unpack_from(">HHB", body)
            data = body[5:5 + n_bytes]
            regs = struct.unpack_from(f">{len(data) // 2}H", data)
            return ModbusRequest(fc, address, count, tuple(regs[:count]))
    except struct.error:
        pass
    return ModbusRequest(fc)


# --- responses --------------------------------------------------------------------------
def adu(frame: Frame, pdu: bytes) -> bytes:
    """A Modbus/TCP response to ``frame`` carrying ``pdu``."""
    return mbap(frame.transaction_id, pdu, frame.unit_id)


def exception_adu(frame: Frame, code: ExceptionCode) -> bytes:
    """The Modbus/TCP exception response to ``frame``."""
    return adu(frame, bytes(((frame.function_code | EXCEPTION_BIT) & 0xFF, int(code))))


def report_server_id_adu(frame: Frame, server_id: bytes) -> bytes:
    """The answer to Report Server ID (0x11): the id bytes, then run indicator 0xFF (on)."""
    data = server_id[:250] + b"\xff"
    return adu(frame, bytes((REPORT_SERVER_ID, len(data))) + data)


@dataclass(frozen=True)
class ModbusResponse:
    """A parsed response PDU: read values, a write's echo, or an exception code."""

    function: int
    values: tuple[int, ...] = ()
    exception_code: int | None = None


def parse_response(pdu: bytes, request: ModbusRequest | None) -> ModbusResponse:
    """Parse a response PDU leniently (a short one keeps only its function code).

    Bit reads are cut to the request's count when it is known; writes give the written
    value (a coil as 0/1).
    """
    if not pdu:
        raise ValueError("empty PDU")
    fc = pdu[0]
    if fc & EXCEPTION_BIT:
        return ModbusResponse(fc & 0x7F, exception_code=pdu[1] if len(pdu) > 1 else None)
    body = pdu[1:]
    try:
        if fc in BIT_READ_FUNCTIONS and body:
            data = body[1:1 + body[0]]
            count = request.count if request is not None and request.count else len(data) * 8
            return ModbusResponse(fc, unpack_bits(data, count))
        if fc in REGISTER_READ_FUNCTIONS and body:
            data = body[1:1 + body[0]]
            return ModbusResponse(fc, tuple(struct.unpack_from(f">{len(data) // 2}H", data)))
        if fc == WRITE_SINGLE_COIL:
            _address, raw = struct.unpack_from(">HH", body)
            return ModbusResponse(fc, (1 if raw == COIL_ON else 0,))
        if fc == WRITE_SINGLE_REGISTER:
            _address, raw = struct.unpack_from(">HH", body)
            return ModbusResponse(fc, (raw,))
    except struct.error:
        pass
    return ModbusResponse(fc)


@dataclass(frozen=True)
class Reply:
    """One strictly parsed reply ADU.

    function_code: as sent back, without the exception bit.
    exception_code: the Modbus exception (0x02 illegal address...) or None for a normal reply.
    values: registers (functions 3, 4) or bits (1, 2; padded to whole bytes) read, or the
        echoed (address, value) of a single write (5, 6); empty for an exception.
    """

    transaction_id: int
    unit_id: int
    function_code: int
    exception_code: int | None
    values: tuple[int, ...]

    @property
    def is_exception(self) -> bool:
        return self.exception_code is not None


def parse_reply(data: bytes) -> Reply:
    """Parse one complete reply ADU (exactly ``reply_length`` bytes) or raise FrameError."""
    total = reply_length(data)
    if len(data) != total:
        raise FrameError(f"reply announces {total} bytes, got {len(data)}")
    transaction_id, _pid, _len, unit_id = struct.unpack_from(">HHHB", data)
    pdu = data[MBAP_HEADER_BYTES:]
    function_code = pdu[0]
    if function_code & EXCEPTION_BIT:
        if len(pdu) != 2:
            raise FrameError(f"exception reply of {len(pdu)} PDU bytes")
        return Reply(transaction_id, unit_id, function_code & 0x7F, pdu[1], ())
    if function_code in REGISTER_READ_FUNCTIONS:
        count = pdu[1] if len(pdu) > 1 else -1
        if count != len(pdu) - 2 or count % 2:
            raise FrameError(f"register reply with byte count {count}, {len(pdu) - 2} data")
        return Reply(transaction_id, unit_id, function_code, None,
                     struct.unpack(f">{count // 2}H", pdu[2:]))
    if function_code in BIT_READ_FUNCTIONS:
        count = pdu[1] if len(pdu) > 1 else -1
        if count != len(pdu) - 2:
            raise FrameError(f"bit reply with byte count {count}, {len(pdu) - 2} data")
        return Reply(transaction_id, unit_id, function_code, None, unpack_bits(pdu[2:]))
    if function_code in WRITE_SINGLE_FUNCTIONS:
        if len(pdu) != 5:
            raise FrameError(f"single-write reply of {len(pdu)} PDU bytes")
        return Reply(transaction_id, unit_id, function_code, None,
                     struct.unpack(">HH", pdu[1:]))
    raise FrameError(f"function {function_code} replies are not parsed here")


def describe_report_server_id(reply: bytes, transaction_id: int) -> str | None:
    """Decode a reply to Report Server ID (function 0x11) as a one-line summary.

    Returns None when ``reply`` is not a Modbus/TCP answer to ``transaction_id``; an exception
    reply is still Modbus and returns ``"exception 0x.."``.
    """
    if len(reply) < EXCEPTION_REPLY_BYTES:
        return None
    tid, protocol, length, _unit = struct.unpack_from(">HHHB", reply)
    if (tid != transaction_id or protocol != 0 or length < MIN_LENGTH_FIELD
            or len(reply) < MBAP_HEADER_BYTES - 1 + length):
        return None
    function = reply[MBAP_HEADER_BYTES]
    if function == REPORT_SERVER_ID | EXCEPTION_BIT:
        return f"exception 0x{reply[8]:02x}"
    if function != REPORT_SERVER_ID:
        return None
    count = reply[8]
    data = reply[9:9 + count]
    return "server id data: " + "".join(
        chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02X}" for b in data)
