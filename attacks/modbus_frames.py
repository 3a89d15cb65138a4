"""Modbus/TCP frames as bytes: well-formed requests, reply parsing and hostile frames.

Pure: no I/O, no clock; randomness only through the ``random.Random`` passed in, so a seed
gives the same frames on every run. The attacks (``attacks.inject``, ``attacks.modbus_fuzz``)
and the loopback hostile-traffic test build what they send here.

An ADU is the 7-byte MBAP header (transaction id, protocol id 0, length = unit id + PDU
bytes, unit id) followed by the PDU (function code + data), all big-endian.

What it cannot do: build RTU frames (no CRC), or parse replies of functions other than the
reads (1-4), single writes (5, 6) and exceptions.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from plc.registers import TANK_MAP, RegisterMap, Table

MBAP_HEADER_BYTES = 7
# Every exception reply of the PLCs: MBAP header + function | 0x80 + exception code.
EXCEPTION_REPLY_BYTES = 9
MAX_PDU_BYTES = 253
# Function codes the PLCs implement; everything else is answered with exception 0x01.
SUPPORTED_FUNCTIONS = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 17})
READ_FUNCTION_TABLE = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING_REGISTER,
                       4: Table.INPUT_REGISTER}
COIL_ON = 0xFF00
COIL_OFF = 0x0000
# A read of holding register 0 (5 PDU bytes): the payload the framing attacks break.
_PROBE_PDU = b"\x03\x00\x00\x00\x01"


class FrameError(ValueError):
    """Bytes that are not one complete, well-formed Modbus/TCP reply."""


def mbap(transaction_id: int, pdu: bytes, unit_id: int = 1, protocol_id: int = 0,
         length: int | None = None) -> bytes:
    """An ADU: MBAP header + ``pdu``; ``length`` overrides the true length field (to lie)."""
    true_length = len(pdu) + 1
    return struct.pack(">HHHB", transaction_id & 0xFFFF, protocol_id & 0xFFFF,
                       (true_length if length is None else length) & 0xFFFF,
                       unit_id & 0xFF) + pdu


def read_request(transaction_id: int, function_code: int, address: int, count: int,
                 unit_id: int = 1) -> bytes:
    """A read request (function 1-4) of ``count`` entries from wire ``address``."""
    if function_code not in READ_FUNCTION_TABLE:
        raise ValueError(f"function {function_code} is not a read (1-4)")
    return mbap(transaction_id, struct.pack(">BHH", function_code, address, count), unit_id)


def write_coil_request(transaction_id: int, address: int, value: bool,
                       unit_id: int = 1) -> bytes:
    """Write Single Coil (function 5): 0xFF00 is on, 0x0000 off."""
    return mbap(transaction_id, struct.pack(">BHH", 5, address,
                                            COIL_ON if value else COIL_OFF), unit_id)


def write_register_request(transaction_id: int, address: int, value: int,
                           unit_id: int = 1) -> bytes:
    """Write Single Register (function 6) of a raw 16-bit ``value``."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"register value {value} outside 0..65535")
    return mbap(transaction_id, struct.pack(">BHH", 6, address, value), unit_id)


@dataclass(frozen=True)
class Reply:
    """One parsed reply ADU.

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


def reply_length(header: bytes) -> int:
    """Total ADU length announced by a 7-byte MBAP header (FrameError when implausible)."""
    if len(header) < MBAP_HEADER_BYTES:
        raise FrameError(f"MBAP header needs {MBAP_HEADER_BYTES} bytes, got {len(header)}")
    _tid, protocol_id, length, _unit = struct.unpack_from(">HHHB", header)
    if protocol_id != 0 or not 2 <= length <= MAX_PDU_BYTES + 1:
        raise FrameError(f"bad MBAP header: protocol {protocol_id}, length {length}")
    return MBAP_HEADER_BYTES - 1 + length


def parse_reply(data: bytes) -> Reply:
    """Parse one complete reply ADU (exactly ``reply_length`` bytes) or raise FrameError."""
    total = reply_length(data)
    if len(data) != total:
        raise FrameError(f"reply announces {total} bytes, got {len(data)}")
    transaction_id, _pid, _len, unit_id = struct.unpack_from(">HHHB", data)
    pdu = data[MBAP_HEADER_BYTES:]
    function_code = pdu[0]
    if function_code & 0x80:
        if len(pdu) != 2:
            raise FrameError(f"exception reply of {len(pdu)} PDU bytes")
        return Reply(transaction_id, unit_id, function_code & 0x7F, pdu[1], ())
    if function_code in (3, 4):
        count = pdu[1] if len(pdu) > 1 else -1
        if count != len(pdu) - 2 or count % 2:
            raise FrameError(f"register reply with byte count {count}, {len(pdu) - 2} data")
        return Reply(transaction_id, unit_id, function_code, None,
                     struct.unpack(f">{count // 2}H", pdu[2:]))
    if function_code in (1, 2):
        count = pdu[1] if len(pdu) > 1 else -1
        if count != len(pdu) - 2:
            raise FrameError(f"bit reply with byte count {count}, {len(pdu) - 2} data")
        bits = tuple((byte >> i) & 1 for byte in pdu[2:] for i in range(8))
        return Reply(transaction_id, unit_id, function_code, None, bits)
    if function_code in (5, 6):
        if len(pdu) != 5:
            raise FrameError(f"single-write reply of {len(pdu)} PDU bytes")
        return Reply(transaction_id, unit_id, function_code, None,
                     struct.unpack(">HH", pdu[1:]))
    raise FrameError(f"function {function_code} replies are not parsed here")


# --- hostile frames ----------------------------------------------------------------------
def table_sizes_of(register_map: RegisterMap = TANK_MAP) -> dict[Table, int]:
    """Entries per table of a register map (what the fuzzer aims just past)."""
    return {table: register_map.count(table) for table in Table}


def bad_content_frame(rng: random.Random, transaction_id: int,
                      table_sizes: Mapping[Table, int] | None = None) -> bytes:
    """A frame with a valid MBAP header whose request a PLC must refuse with an exception.

    One of: an unknown function code with a random body; a read with an address or count
    out of range; a write outside the map or with a lying byte count; a good read for a
    unit id the PLC does not serve (ids 1 and 255 are served).
    """
    sizes = table_sizes or table_sizes_of()
    kind = rng.randrange(4)
    if kind == 0:
        fc = rng.choice([c for c in range(256) if c not in SUPPORTED_FUNCTIONS])
        return mbap(transaction_id, bytes([fc]) + rng.randbytes(rng.randrange(0, 40)))
    if kind == 1:
        fc = rng.choice((1, 2, 3, 4))
        size = sizes[READ_FUNCTION_TABLE[fc]]
        address, count = rng.choice([(0, 0), (0, 2001), (0, 65535), (65535, 2),
                                     (size, 1), (rng.randrange(size, 65536), 1),
                                     (0, size + 1)])
        return mbap(transaction_id, struct.pack(">BHH", fc, address, count))
    if kind == 2:
        fc = rng.choice((5, 6, 15, 16))
        address = rng.randrange(100, 65536)
        if fc in (5, 6):
            return mbap(transaction_id, struct.pack(">BHH", fc, address, rng.randrange(65536)))
        count = rng.randrange(0, 300)
        values = rng.randbytes(rng.randrange(0, 60))
        return mbap(transaction_id,
                    struct.pack(">BHHB", fc, address, count, rng.randrange(256)) + values)
    unit = rng.choice([u for u in range(256) if u not in (1, 255)])
    return mbap(transaction_id, struct.pack(">BHH", 3, 0, 1), unit_id=unit)


def bad_framing(rng: random.Random) -> bytes:
    """Bytes whose MBAP framing is broken: a PLC should drop the connection, not answer.

    One of: random bytes; a truncated header; a length field that lies (0, 1, 255, 65535 or
    more than sent); a non-zero protocol id.
    """
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:
        return mbap(rng.randrange(65536), _PROBE_PDU)[:rng.randrange(1, MBAP_HEADER_BYTES)]
    if kind == 2:
        length = rng.choice((0, 1, 255, 65535, rng.randrange(20, 254)))
        return mbap(rng.randrange(65536), _PROBE_PDU, length=length)
    return mbap(rng.randrange(65536), _PROBE_PDU, protocol_id=rng.randrange(1, 65536))


def partial_header(transaction_id: int) -> bytes:
    """The first 3 bytes of a read request: what a half-open, mid-header connection holds."""
    return mbap(transaction_id, _PROBE_PDU)[:3]
