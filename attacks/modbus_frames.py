"""Hostile Modbus/TCP frames: what the fuzzer and the hostile-traffic tests send to a PLC.

Pure: no I/O, no clock; randomness only through the ``random.Random`` passed in, so a seed
gives the same frames on every run. Well-formed frames and their parsing are the one codec's,
:mod:`common.modbus`; this module only breaks them on purpose.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping

from common.modbus import MBAP_HEADER_BYTES, SUPPORTED_FUNCTIONS, mbap
from plc.registers import READ_FUNCTION_TABLE, TANK_MAP, RegisterMap, Table

# A read of holding register 0 (5 PDU bytes): the payload the framing attacks break.
_PROBE_PDU = b"\x03\x00\x00\x00\x01"


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
