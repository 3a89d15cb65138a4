"""S7comm (ISO-on-TCP) knowledge shared by the S7 PLC, the HMI and the attacks: one place.

The port, the function codes, where each register table of a process's map lives in the S7
address space (one data block per table, ``docs/protocols.md``), the conversion between a
table's raw values and its data-block bytes, the identity records a PLC answers nmap's
``s7-info`` with (SZL 0x0011 and 0x001C), and builders of the TPKT/COTP/S7 frames the
fuzzer starts from. Pure: no sockets, no library.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

S7_PORT = 102
RACK, SLOT = 0, 2  # what an S7-300 CPU answers at; the client's TSAP names them

# S7 PDU types (ROSCTR) and job function codes.
ROSCTR_JOB, ROSCTR_ACK, ROSCTR_ACK_DATA, ROSCTR_USERDATA = 0x01, 0x02, 0x03, 0x07
FUNC_READ_VAR, FUNC_WRITE_VAR, FUNC_SETUP = 0x04, 0x05, 0xF0

# Register table (plc.registers.Table values) -> data block number. Registers are 16-bit
# big-endian words at byte 2*address; coils and discrete inputs one byte each (0 or 1).
TABLE_DB = {"input_register": 1, "holding_register": 2, "coil": 3, "discrete_input": 4}
WORD_TABLES = ("input_register", "holding_register")


def db_size(table: str, count: int) -> int:
    """Bytes of the data block that holds ``count`` entries of ``table``."""
    return count * (2 if table in WORD_TABLES else 1)


def to_db(table: str, values: Sequence[int | bool]) -> bytes:
    """A table's raw values as its data-block bytes."""
    if table in WORD_TABLES:
        return struct.pack(f">{len(values)}H", *(int(v) & 0xFFFF for v in values))
    return bytes(1 if v else 0 for v in values)


def from_db(table: str, data: bytes | bytearray) -> list[int]:
    """A data block's bytes as the table's raw values (bits as 0/1)."""
    if table in WORD_TABLES:
        return list(struct.unpack(f">{len(data) // 2}H", bytes(data[: len(data) // 2 * 2])))
    return [1 if b else 0 for b in data]


def db_offset(table: str, address: int) -> int:
    """Byte offset of entry ``address`` of ``table`` in its data block."""
    return address * (2 if table in WORD_TABLES else 1)


# --- identity (nmap s7-info reads SZL 0x0011 records 1, 6, 7 and SZL 0x001C records 1..5) ---

def _text(value: str, size: int) -> bytes:
    return value.encode("ascii", "replace")[: size - 1].ljust(size, b"\x00")


def szl_module_id(order_number: str, version: tuple[int, int, int]) -> bytes:
    """SZL 0x0011 body (record length, count, records): module, basic hardware, firmware.

    A record is index, 20 characters, then three words; the firmware record (index 7) has
    'V' and the three version numbers in its last four bytes.
    """
    module = struct.pack(">H", 0x0001) + _text(order_number, 20) + struct.pack(">HHH", 0, 0, 0)
    hardware = struct.pack(">H", 0x0006) + _text(order_number, 20) \
        + struct.pack(">HHH", 0, 0, 0)
    firmware = struct.pack(">H", 0x0007) + _text("", 20) + struct.pack(">H", 0) \
        + bytes([0x56, *version[:3]])
    return struct.pack(">HH", 28, 3) + module + hardware + firmware


def szl_component_id(system_name: str, module_name: str, plant_id: str, copyright_text: str,
                     serial: str) -> bytes:
    """SZL 0x001C body (record length, count, records 1..5 of index + 32 characters)."""
    fields = (system_name, module_name, plant_id, copyright_text, serial)
    records = b"".join(struct.pack(">H", i + 1) + _text(v, 32) for i, v in enumerate(fields))
    return struct.pack(">HH", 34, len(fields)) + records


# --- frames (for the fuzzer and tests; the PLC and the HMI use python-snap7's own) ---

def tpkt(payload: bytes) -> bytes:
    """A TPKT (RFC 1006) frame around ``payload``."""
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def cotp_connect_request(rack: int = RACK, slot: int = SLOT) -> bytes:
    """TPKT + COTP connection request with the client's and the CPU's TSAPs."""
    remote_tsap = (0x01 << 8) | (rack << 5) | slot
    cotp = bytes([0x11, 0xE0, 0, 0, 0, 1, 0]) + bytes([0xC0, 1, 0x0A]) \
        + bytes([0xC1, 2, 0x01, 0x00]) + bytes([0xC2, 2]) + struct.pack(">H", remote_tsap)
    return tpkt(cotp)


COTP_DATA = bytes([0x02, 0xF0, 0x80])


def s7_job(parameters: bytes, data: bytes = b"", pdu_ref: int = 1) -> bytes:
    """TPKT + COTP data + an S7 job PDU with the given parameter and data parts."""
    header = struct.pack(">BBHHHH", 0x32, ROSCTR_JOB, 0, pdu_ref, len(parameters), len(data))
    return tpkt(COTP_DATA + header + parameters + data)


def setup_communication(pdu_size: int = 480) -> bytes:
    """The S7 'setup communication' job every client sends first."""
    return s7_job(struct.pack(">BBHHH", FUNC_SETUP, 0, 1, 1, pdu_size))


def write_db(db: int, offset: int, data: bytes) -> bytes:
    """An S7 'write var' job writing ``data`` (bytes) into DB ``db`` at byte ``offset``."""
    item = struct.pack(">BBBBHHB", 0x12, 0x0A, 0x10, 0x02, len(data), db, 0x84) \
        + (offset * 8).to_bytes(3, "big")
    payload = struct.pack(">BBH", 0x00, 0x04, len(data) * 8) + data
    return s7_job(struct.pack(">BB", FUNC_WRITE_VAR, 1) + item, payload)
