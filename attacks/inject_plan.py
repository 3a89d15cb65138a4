"""The injection's write plan (pure): which coils and registers to write, in which order.

The plan is built from the command-line flags against a PLC's register map; a flag that
does not fit the map (no such register, a read-only table) is a ValueError naming it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

from common.modbus import WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER
from plc.registers import RegisterMap, Table

PUMP_COILS = ("pump_on", "pump_enable")


@dataclass(frozen=True)
class WriteSpec:
    """One write: a coil or holding register of the map, its raw and engineering value."""

    name: str
    table: str
    address: int
    raw: int
    value: float

    @property
    def function_code(self) -> int:
        return WRITE_SINGLE_COIL if self.table == Table.COIL else WRITE_SINGLE_REGISTER


def _has(register_map: RegisterMap, name: str) -> bool:
    return any(r.name == name for r in register_map.registers)


def parse_assignment(text: str) -> tuple[str, float]:
    """argparse type: ``NAME=VALUE`` with a finite number VALUE (engineering units)."""
    name, sep, value_text = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = float(value_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number in {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number in {text!r}")
    return name, value


def write_plan(register_map: RegisterMap, pump_on: bool = False, auto_off: bool = False,
               valve_close: bool = False, assignments: Sequence[tuple[str, float]] = ()
               ) -> list[WriteSpec]:
    """The ordered writes for the flags against ``register_map``; ValueError names a misfit.

    Order: auto mode off, the ``--set`` assignments, valve closed, pump on: the logic is out
    of the loop before the outputs it would fight are written. Raw values are clamped to
    16 bits by the register's resolution (``Register.to_raw``).
    """
    wanted: list[tuple[str, float]] = []
    if auto_off:
        wanted.append(("auto_mode", 0.0))
    wanted.extend(assignments)
    if valve_close:
        wanted.append(("valve_open", 0.0))
    if pump_on:
        names = [n for n in PUMP_COILS if _has(register_map, n)]
        if not names:
            raise ValueError(f"the {register_map.process} map has no pump coil")
        wanted.append((names[0], 1.0))
    if not wanted:
        raise ValueError("nothing to write: give --pump-on, --auto-off, --valve-close or --set")
    plan = []
    for name, value in wanted:
        if not _has(register_map, name):
            raise ValueError(f"the {register_map.process} map has no register {name!r}")
        reg = register_map.get(name)
        if not reg.table.writable:
            raise ValueError(f"{name} is a {reg.table}: Modbus cannot write it")
        plan.append(WriteSpec(name=name, table=str(reg.table), address=reg.address,
                              raw=reg.to_raw(value), value=value))
    return plan

