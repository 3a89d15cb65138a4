"""The register map of each PLC process, defined once here.

Addresses are **wire addresses**: the 0-based address carried in the Modbus PDU (what
``client.read_holding_registers(address=...)`` takes and what a capture shows). The
conventional 1-based reference numbers (coil 00001, discrete input 10001, input register
30001, holding register 40001) are derived from them for documentation only.

Engineering value = raw 16-bit value x ``resolution`` (``unit``). Bits have no unit.
``docs/registers.md`` is generated from this module (``python -m plc.registers``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10
    from enum import Enum

    class StrEnum(str, Enum):
        """enum.StrEnum before 3.11: ``str()`` and formatting give the value."""

        def __str__(self) -> str:
            return str(self.value)


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT_REGISTER = "input_register"
    HOLDING_REGISTER = "holding_register"

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        """Whether a Modbus client can write this table (coils and holding registers)."""
        return self in (Table.COIL, Table.HOLDING_REGISTER)

    @property
    def reference_base(self) -> int:
        """First conventional 1-based reference number of the table (e.g. 40001)."""
        return {Table.COIL: 1, Table.DISCRETE_INPUT: 10001,
                Table.INPUT_REGISTER: 30001, Table.HOLDING_REGISTER: 40001}[self]

    @property
    def read_function(self) -> int:
        """Modbus function code that reads the table."""
        return {Table.COIL: 1, Table.DISCRETE_INPUT: 2,
                Table.HOLDING_REGISTER: 3, Table.INPUT_REGISTER: 4}[self]


# The table each Modbus function addresses (reads 1-4, writes 5, 6, 15, 16).
TABLE_BY_FUNCTION = {1: Table.COIL, 5: Table.COIL, 15: Table.COIL, 2: Table.DISCRETE_INPUT,
                     3: Table.HOLDING_REGISTER, 6: Table.HOLDING_REGISTER,
                     16: Table.HOLDING_REGISTER, 4: Table.INPUT_REGISTER}
READ_FUNCTION_TABLE = {table.read_function: table for table in Table}

UINT16_MAX = 0xFFFF


@dataclass(frozen=True)
class Register:
    """One coil, discrete input or register.

    name: identifier, also the ground-truth CSV column stem (``level`` -> ``level_cm``).
    address: wire address (0-based, as sent in the PDU).
    unit: engineering unit of ``raw * resolution``; empty for bits and counters.
    resolution: engineering units per raw count (raw values are unsigned 16-bit).
    default: engineering value at start-up.
    """

    name: str
    table: Table
    address: int
    description: str
    unit: str = ""
    resolution: float = 1.0
    default: float = 0.0

    @property
    def reference(self) -> int:
        """Conventional 1-based reference number (``40001`` is holding wire address 0)."""
        return self.table.reference_base + self.address

    @property
    def column(self) -> str:
        """Ground-truth CSV column name, with the unit when there is one."""
        return f"{self.name}_{self.unit}" if self.unit else self.name

    @property
    def data_type(self) -> str:
        return "bool" if self.table.is_bit else "uint16"

    def to_raw(self, value: float) -> int:
        """Raw value for an engineering value, rounded and clamped to what 16 bits hold."""
        if self.table.is_bit:
            return int(bool(value))
        return min(UINT16_MAX, max(0, round(value / self.resolution)))

    def to_eng(self, raw: int) -> float:
        """Engineering value of a raw value."""
        if self.table.is_bit:
            return float(bool(raw))
        return raw * self.resolution


@dataclass(frozen=True)
class RegisterMap:
    """All registers of one process; addresses in each table are contiguous from 0.

    process_id: value of the ``process_id`` input register, so a client can tell the
        processes apart on the wire.
    """

    process: str
    process_id: int
    description: str
    registers: tuple[Register, ...]

    def __post_init__(self) -> None:
        names: set[str] = set()
        for table in Table:
            addresses = [r.address for r in self.table(table)]
            if addresses != list(range(len(addresses))):
                raise ValueError(f"{self.process}: {table} addresses must be 0..n-1, "
                                 f"got {addresses}")
        for r in self.registers:
            if r.name in names:
                raise ValueError(f"{self.process}: duplicate register name {r.name}")
            names.add(r.name)

    def table(self, table: Table) -> tuple[Register, ...]:
        """Registers of one table, by address."""
        return tuple(sorted((r for r in self.registers if r.table == table),
                            key=lambda r: r.address))

    def count(self, table: Table) -> int:
        return len(self.table(table))

    def get(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"{self.process} has no register {name!r}")

    def defaults(self, table: Table) -> list[int]:
        """Raw start-up values of a table, by address."""
        return [r.to_raw(r.default) for r in self.table(table)]


C, DI, IR, HR = Table.COIL, Table.DISCRETE_INPUT, Table.INPUT_REGISTER, Table.HOLDING_REGISTER


# What every map has, at the same addresses: the identity input registers, the high-high and
# low-low alarm bits on the measured quantity, and their two limits.
def _identity(process_id: int, process: str) -> tuple[Register, Register]:
    """Input registers 0 and 1: which process this is (read first by the HMI), scan count."""
    return (Register("process_id", IR, 0, f"process identifier, always {process_id} "
                     f"({process})", default=process_id),
            Register("scan_count", IR, 1, "PLC scan cycles since start, modulo 65536"))


def _limit_alarms(quantity: str) -> tuple[Register, Register]:
    """Discrete inputs 0 and 1: ``quantity`` at or beyond its alarm limits."""
    return (Register("alarm_high_high", DI, 0, f"{quantity} >= high-high alarm limit"),
            Register("alarm_low_low", DI, 1, f"{quantity} <= low-low alarm limit"))


def _limits(stem: str, address: int, unit: str, resolution: float, high_high: float,
            low_low: float) -> tuple[Register, Register]:
    """The alarm limits ``<stem>_hh_alarm``, ``<stem>_ll_alarm``: holding ``address``, +1."""
    return (Register(f"{stem}_hh_alarm", HR, address, "high-high alarm limit", unit,
                     resolution, high_high),
            Register(f"{stem}_ll_alarm", HR, address + 1, "low-low alarm limit", unit,
                     resolution, low_low))


TANK_MAP = RegisterMap(
    process="tank",
    process_id=1,
    description="PLC 1: water tank (200 cm tall, 1 m2) with an inflow pump and an outflow "
                "valve; hysteresis level control between two setpoints.",
    registers=(
        Register("pump_on", C, 0, "inflow pump running (the logic sets it in auto mode; "
                 "a write holds until the next setpoint crossing)", default=0),
        Register("valve_open", C, 1, "outflow valve open (downstream demand)", default=1),
        Register("auto_mode", C, 2, "1: the logic drives the pump; 0: manual, the pump "
                 "coil is left as written", default=1),
        *_limit_alarms("level"),
        Register("alarm_overflow", DI, 2, "level at the rim: water is spilling"),
        Register("alarm_dry", DI, 3, "tank empty"),
        *_identity(1, "tank"),
        Register("level", IR, 2, "water level", "cm", 0.1, 100.0),
        Register("inflow", IR, 3, "pump inflow", "lps", 0.1),
        Register("outflow", IR, 4, "outflow through the valve", "lps", 0.1),
        Register("spilled", IR, 5, "water spilled over the rim since start (saturates)",
                 "l", 1.0),
        Register("level_high_sp", HR, 0, "pump stops at or above this level", "cm", 0.1,
                 160.0),
        Register("level_low_sp", HR, 1, "pump starts at or below this level", "cm", 0.1,
                 40.0),
        *_limits("level", 2, "cm", 0.1, 180.0, 20.0),
    ),
)

PRESSURE_MAP = RegisterMap(
    process="pressure",
    process_id=2,
    description="PLC 2: booster pump station; a variable-speed pump holds the discharge "
                "pressure of a pipe network whose demand varies, under PI control.",
    registers=(
        Register("pump_enable", C, 0, "pump allowed to run", default=1),
        Register("auto_mode", C, 1, "1: PI control of the speed; 0: manual speed "
                 "(holding register manual_speed)", default=1),
        *_limit_alarms("pressure"),
        Register("alarm_overpressure", DI, 2, "pressure above the pipe design limit "
                 "(8 bar)"),
        Register("alarm_deadhead", DI, 3, "pump running with (almost) no flow"),
        *_identity(2, "pressure"),
        Register("pressure", IR, 2, "discharge pressure (gauge)", "bar", 0.01, 4.0),
        Register("pump_speed", IR, 3, "actual pump speed", "pct", 0.1),
        Register("flow", IR, 4, "pump flow", "lps", 0.1),
        Register("demand", IR, 5, "consumer valve opening (the disturbance)", "pct", 0.1),
        Register("pressure_sp", HR, 0, "pressure setpoint", "bar", 0.01, 4.0),
        *_limits("pressure", 1, "bar", 0.01, 6.0, 2.0),
        Register("manual_speed", HR, 3, "speed command in manual mode", "pct", 0.1, 0.0),
        Register("kp", HR, 4, "PI proportional gain", "pct_per_bar", 0.1, 20.0),
        Register("ki", HR, 5, "PI integral gain", "pct_per_bar_s", 0.1, 10.0),
    ),
)

DOSING_MAP = RegisterMap(
    process="dosing",
    process_id=3,
    description="Chlorine dosing station: a metering pump doses hypochlorite into a contact "
                "tank whose through-flow varies; flow-paced dosing with a proportional trim "
                "on the measured residual chlorine.",
    registers=(
        Register("dosing_enable", C, 0, "metering pump allowed to run", default=1),
        Register("auto_mode", C, 1, "1: flow-paced control of the pump; 0: manual speed "
                 "(holding register manual_speed)", default=1),
        *_limit_alarms("chlorine"),
        Register("alarm_overdose", DI, 2, "chlorine above the safe limit (4 mg/l)"),
        *_identity(3, "dosing"),
        Register("chlorine", IR, 2, "residual chlorine in the contact tank", "mg_l", 0.01,
                 1.0),
        Register("flow", IR, 3, "water flow through the contact tank", "lps", 0.1),
        Register("pump_speed", IR, 4, "actual metering pump speed", "pct", 0.1),
        Register("dosed", IR, 5, "chlorine dosed since start (saturates)", "g", 1.0),
        Register("chlorine_sp", HR, 0, "residual chlorine setpoint", "mg_l", 0.01, 1.0),
        *_limits("chlorine", 1, "mg_l", 0.01, 2.0, 0.3),
        Register("manual_speed", HR, 3, "pump speed command in manual mode", "pct", 0.1,
                 0.0),
        Register("kp", HR, 4, "proportional trim gain", "pct_per_mg_l", 0.1, 20.0),
        Register("dose_ratio", HR, 5, "flow pacing: pump speed per (l/s x mg/l of setpoint)",
                 "pct_per_g_s", 0.01, 0.5),
    ),
)

MAPS: dict[str, RegisterMap] = {m.process: m for m in (TANK_MAP, PRESSURE_MAP, DOSING_MAP)}
MAPS_BY_ID: dict[int, RegisterMap] = {m.process_id: m for m in MAPS.values()}

_TABLE_TITLES = {C: "Coils (FC 1 read, FC 5/15 write)",
                 DI: "Discrete inputs (FC 2 read)",
                 IR: "Input registers (FC 4 read)",
                 HR: "Holding registers (FC 3 read, FC 6/16 write)"}


def markdown(maps: Sequence[RegisterMap] = tuple(MAPS.values())) -> str:
    """The register documentation (``docs/registers.md``) as Markdown."""
    lines = [
        "# PLC register maps",
        "",
        "Generated from `plc/registers.py` by `python -m plc.registers > docs/registers.md`;",
        "a unit test fails when this file and the code disagree.",
        "",
        "**Addresses are wire addresses**: the 0-based address in the Modbus PDU, the one",
        "`pymodbus` clients take (`read_holding_registers(address=0)` reads 40001) and",
        "captures show. `Ref` is the conventional 1-based reference number. (pymodbus",
        "3.16's legacy `ModbusSequentialDataBlock(N, ...)` puts its first value at wire",
        "address N-1 and refuses N=0; the server defines its store with `SimData` at the",
        "wire addresses below instead.)",
        "",
        "All registers are unsigned 16-bit; engineering value = raw x resolution, clamped to",
        "0..65535 raw. Every PLC answers unit id `--unit-id` (default 1) and 255; other unit",
        "ids get exception 0x0B. Reading past a table's end gives exception 0x02 (illegal",
        "address); a count of 0 or above the Modbus limit gives 0x03 (illegal value);",
        "unknown function codes give 0x01. Report Server ID (FC 17, 0x11) answers",
        "`SDN-ICS-Lab PLC <process>` and run indicator 0xFF (what nmap's `modbus-discover`",
        "prints as `Slave ID data`).",
        "",
        "Ground-truth CSV columns (`python -m plc.server --state-csv`): `t_s` (seconds since",
        "start), then every register's `Column` below except `process_id`, in engineering",
        "units at full precision (bits as 0/1; `scan_count` not wrapped).",
        "",
        "HMI traffic (`python -m plc.hmi`): after each connect one FC 4 read of input register",
        "0 (`process_id`) picks the map; then every period one read per table, whole table",
        "from address 0: FC 1, FC 2, FC 4, FC 3. Operator writes use FC 5 (coil) and FC 6",
        "(holding register).",
        "",
    ]
    for reg_map in maps:
        lines += [f"## `{reg_map.process}` (process_id {reg_map.process_id})", "",
                  reg_map.description, ""]
        for table in Table:
            regs = reg_map.table(table)
            if not regs:
                continue
            lines += [f"### {_TABLE_TITLES[table]}", "",
                      "| Address | Ref | Name | Type | Unit | Resolution | Default | Column |"
                      " Description |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in regs:
                res = "" if table.is_bit else f"{r.resolution:g}"
                lines.append(f"| {r.address} | {r.reference:05d} | `{r.name}` | {r.data_type}"
                             f" | {r.unit} | {res} | {r.default:g} | `{r.column}` |"
                             f" {r.description} |")
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the Markdown register documentation."""
    argparse.ArgumentParser(prog="python -m plc.registers",
                            description="Print docs/registers.md").parse_args(argv)
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
