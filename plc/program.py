"""One PLC program: a register image in, one scan (logic + process step), an image out.

A :class:`PlcProgram` owns the process model and the logic state. The server copies the
coils and holding registers out of its Modbus store (clients' writes included), calls
:meth:`PlcProgram.scan`, and copies the returned image back. Nothing here does I/O, so a
whole PLC can be run and tested without a network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from common.plant import ProcessKind
from plc.logic import (
    PressureInputs,
    PressureLogicState,
    PressureOutputs,
    TankInputs,
    TankOutputs,
    pressure_logic,
    tank_logic,
)
from plc.process import (
    DosingParams,
    DosingProcess,
    PressureParams,
    PressureProcess,
    TankParams,
    TankProcess,
)
from plc.registers import DOSING_MAP, PRESSURE_MAP, TANK_MAP, RegisterMap, Table


@dataclass
class RegisterImage:
    """Raw values of the four tables, each indexed by wire address."""

    coils: list[bool]
    discrete_inputs: list[bool]
    input_registers: list[int]
    holding_registers: list[int]

    def table(self, table: Table) -> list:
        return {Table.COIL: self.coils, Table.DISCRETE_INPUT: self.discrete_inputs,
                Table.INPUT_REGISTER: self.input_registers,
                Table.HOLDING_REGISTER: self.holding_registers}[table]


def _reads(stem: str, unit: str, **others: str) -> tuple[tuple[str, str], ...]:
    """The (argument, register) pairs a logic reads: ``auto_mode``, its alarm limits
    ``hh_alarm_<unit>`` and ``ll_alarm_<unit>`` (registers ``<stem>_hh_alarm`` and
    ``<stem>_ll_alarm``, as every register map names them), then ``others``."""
    return (("auto_mode", "auto_mode"), (f"hh_alarm_{unit}", f"{stem}_hh_alarm"),
            (f"ll_alarm_{unit}", f"{stem}_ll_alarm"), *others.items())


class PlcProgram(ABC):
    """A process, its logic and its register map, scanned one cycle at a time.

    A subclass declares its parts as data: the register map, the process model and its
    parameters, which register's default the model starts at, and which of the logic's
    outputs it writes back; it writes only the control step (:meth:`_control`) and which
    process variables it measures (:meth:`_measurements`).
    """

    register_map: RegisterMap
    process_cls: type
    params_cls: type  # what a plant file's ``process.params`` may set
    start: tuple[str, str]  # (process field, register): the model starts at its default
    reads: tuple[tuple[str, str], ...]  # the logic's inputs from registers (:func:`_reads`)
    outputs: tuple[str, ...]  # the logic's outputs written to registers of the same name

    def __init__(self, process: Any = None) -> None:
        self.process = self.new_process() if process is None else process
        self.scan_count = 0
        self.time_s = 0.0
        self._image = self.initial_image()

    @classmethod
    def new_process(cls, params: Any = None) -> Any:
        """A process model at the start value (``params``: its parameters, None: defaults)."""
        field_name, register = cls.start
        state: dict[str, Any] = {field_name: cls.register_map.get(register).default}
        if params is not None:
            state["params"] = params
        return cls.process_cls(**state)

    def initial_image(self) -> RegisterImage:
        """The image at start-up: the map's defaults."""
        m = self.register_map
        return RegisterImage(
            coils=[bool(v) for v in m.defaults(Table.COIL)],
            discrete_inputs=[bool(v) for v in m.defaults(Table.DISCRETE_INPUT)],
            input_registers=m.defaults(Table.INPUT_REGISTER),
            holding_registers=m.defaults(Table.HOLDING_REGISTER),
        )

    @property
    def image(self) -> RegisterImage:
        """The image after the last scan."""
        return self._image

    def _eng(self, table_values: list, name: str) -> float:
        reg = self.register_map.get(name)
        return reg.to_eng(int(table_values[reg.address]))

    def _inputs(self, image: RegisterImage) -> dict[str, Any]:
        """The logic's inputs named in :attr:`reads`: bits as bools, registers in
        engineering units."""
        values: dict[str, Any] = {}
        for arg, name in self.reads:
            reg = self.register_map.get(name)
            value = reg.to_eng(int(image.table(reg.table)[reg.address]))
            values[arg] = bool(value) if reg.table.is_bit else value
        return values

    def _set(self, image: RegisterImage, name: str, value: float) -> None:
        reg = self.register_map.get(name)
        values = image.table(reg.table)
        values[reg.address] = bool(value) if reg.table.is_bit else reg.to_raw(value)

    def scan(self, coils: list[bool], holding_registers: list[int],
             dt_s: float) -> RegisterImage:
        """One scan: read inputs, run the logic, advance the process by ``dt_s``, write outputs.

        coils, holding_registers: the store's current values (clients' writes included).
        Returns the whole new image; only the logic changes coils, never holding registers.
        """
        image = RegisterImage(coils=[bool(c) for c in coils],
                              discrete_inputs=list(self._image.discrete_inputs),
                              input_registers=list(self._image.input_registers),
                              holding_registers=[int(h) for h in holding_registers])
        out = self._control(image, dt_s)
        self.process.step(dt_s)
        for name in self.outputs:
            self._set(image, name, getattr(out, name))
        for name, value in self._measurements().items():
            self._set(image, name, value)
        self.scan_count += 1
        self.time_s += dt_s
        self._set(image, "process_id", self.register_map.process_id)
        scan_reg = self.register_map.get("scan_count")
        image.input_registers[scan_reg.address] = self.scan_count & 0xFFFF
        self._image = image
        return image

    @abstractmethod
    def _control(self, image: RegisterImage, dt_s: float) -> Any:
        """Run the logic on ``image`` and set the process's inputs; the logic's outputs
        (an object with an attribute for each of :attr:`outputs`)."""

    @abstractmethod
    def _measurements(self) -> dict[str, float]:
        """The process variables after a step, by register name."""

    def truth(self) -> dict[str, float]:
        """Ground-truth process variables at full precision, by CSV column name."""
        return {self.register_map.get(k).column: v for k, v in self._measurements().items()}

    def columns(self) -> tuple[str, ...]:
        """Ground-truth CSV header: ``t_s`` then every register but ``process_id``."""
        return ("t_s", *(r.column for r in self.register_map.registers
                         if r.name != "process_id"))

    def row(self, t_s: float) -> tuple[float | int, ...]:
        """Ground-truth CSV row after the last scan, in the order of :meth:`columns`."""
        truth = self.truth()
        values: list[float | int] = [round(t_s, 4)]
        for r in self.register_map.registers:
            if r.name == "process_id":
                continue
            if r.name == "scan_count":
                values.append(self.scan_count)
            elif r.column in truth:
                values.append(round(truth[r.column], 4))
            elif r.table.is_bit:
                values.append(int(self._image.table(r.table)[r.address]))
            else:
                values.append(round(r.to_eng(self._image.table(r.table)[r.address]), 4))
        return tuple(values)


class TankProgram(PlcProgram):
    """PLC 1: the water tank under hysteresis level control."""

    register_map = TANK_MAP
    process_cls, params_cls, start = TankProcess, TankParams, ("level_cm", "level")
    outputs = ("pump_on", "alarm_high_high", "alarm_low_low", "alarm_overflow", "alarm_dry")
    process: TankProcess

    reads = _reads("level", "cm", pump_on="pump_on", high_sp_cm="level_high_sp",
                   low_sp_cm="level_low_sp")

    def _control(self, image: RegisterImage, dt_s: float) -> TankOutputs:
        p = self.process
        out = tank_logic(TankInputs(level_cm=p.level_cm, rim_switch=p.overflowing,
                                    empty_switch=p.dry, **self._inputs(image)))
        p.pump_on = out.pump_on
        p.valve_open = bool(self._eng(image.coils, "valve_open"))
        return out

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"level": p.level_cm, "inflow": p.inflow_lps, "outflow": p.outflow_lps,
                "spilled": p.spilled_l}


class PressureProgram(PlcProgram):
    """PLC 2: the booster pump station under PI pressure control."""

    register_map = PRESSURE_MAP
    process_cls, params_cls, start = PressureProcess, PressureParams, ("pressure_bar", "pressure")
    outputs = ("alarm_high_high", "alarm_low_low", "alarm_overpressure", "alarm_deadhead")
    process: PressureProcess

    def __init__(self, process: PressureProcess | None = None) -> None:
        super().__init__(process)
        self.logic_state = PressureLogicState(integral_pct=self.process.speed_pct)

    reads = _reads("pressure", "bar", pump_enable="pump_enable", setpoint_bar="pressure_sp",
                   manual_speed_pct="manual_speed", kp_pct_per_bar="kp", ki_pct_per_bar_s="ki")

    def _control(self, image: RegisterImage, dt_s: float) -> PressureOutputs:
        p, inputs = self.process, self._inputs(image)
        out, self.logic_state = pressure_logic(PressureInputs(
            pressure_bar=p.pressure_bar, overpressure=p.overpressure, deadhead=p.deadhead,
            **inputs), self.logic_state, dt_s)
        p.pump_enabled = inputs["pump_enable"]
        p.speed_cmd_pct = out.speed_cmd_pct
        return out

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"pressure": p.pressure_bar, "pump_speed": p.speed_pct, "flow": p.flow_lps,
                "demand": p.demand_pct}


@dataclass(frozen=True)
class DosingOutputs:
    speed_cmd_pct: float
    alarm_high_high: bool
    alarm_low_low: bool
    alarm_overdose: bool


def dosing_logic(chlorine_mg_l: float, flow_lps: float, enable: bool, auto_mode: bool,
                 setpoint_mg_l: float, hh_alarm_mg_l: float, ll_alarm_mg_l: float,
                 manual_speed_pct: float, kp_pct_per_mg_l: float, dose_ratio: float,
                 overdose: bool) -> DosingOutputs:
    """Flow-paced dosing (speed = ratio x flow x setpoint) plus a proportional trim on the
    measured residual; manual mode takes the manual speed, a disabled pump stops."""
    if not enable:
        speed = 0.0
    elif not auto_mode:
        speed = manual_speed_pct
    else:
        speed = (dose_ratio * flow_lps * setpoint_mg_l
                 + kp_pct_per_mg_l * (setpoint_mg_l - chlorine_mg_l))
    return DosingOutputs(
        speed_cmd_pct=min(100.0, max(0.0, speed)),
        alarm_high_high=chlorine_mg_l >= hh_alarm_mg_l,
        alarm_low_low=chlorine_mg_l <= ll_alarm_mg_l,
        alarm_overdose=overdose,
    )


class DosingProgram(PlcProgram):
    """The chlorine dosing station under flow-paced control."""

    register_map = DOSING_MAP
    process_cls, params_cls, start = DosingProcess, DosingParams, ("chlorine_mg_l", "chlorine")
    outputs = ("alarm_high_high", "alarm_low_low", "alarm_overdose")
    process: DosingProcess

    reads = _reads("chlorine", "mg_l", enable="dosing_enable", setpoint_mg_l="chlorine_sp",
                   manual_speed_pct="manual_speed", kp_pct_per_mg_l="kp",
                   dose_ratio="dose_ratio")

    def _control(self, image: RegisterImage, dt_s: float) -> DosingOutputs:
        p, inputs = self.process, self._inputs(image)
        out = dosing_logic(chlorine_mg_l=p.chlorine_mg_l, flow_lps=p.flow_lps,
                           overdose=p.overdose, **inputs)
        p.pump_enabled = inputs["enable"]
        p.pump_cmd_pct = out.speed_cmd_pct
        return out

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"chlorine": p.chlorine_mg_l, "flow": p.flow_lps,
                "pump_speed": p.pump_speed_pct, "dosed": p.dosed_g}


PROGRAMS: dict[str, type[PlcProgram]] = {"tank": TankProgram, "pressure": PressureProgram,
                                         "dosing": DosingProgram}

# Each kind's parameter dataclass (what a plant file's ``process.params`` may set).
PARAMS: dict[str, type] = {name: program.params_cls for name, program in PROGRAMS.items()}


def process_kinds() -> dict[str, ProcessKind]:
    """What a plant file may ask of each process kind (common.plant validates against it)."""
    kinds = {}
    for name, program in PROGRAMS.items():
        reg_map = program.register_map
        kinds[name] = ProcessKind(
            name=name,
            params=tuple(f.name for f in fields(PARAMS[name])),
            writable=tuple(r.name for r in reg_map.registers if r.table.writable),
            registers=tuple((r.name, str(r.table), r.address) for r in reg_map.registers))
    return kinds


def make_program(process: str, params: Mapping[str, float] | None = None) -> PlcProgram:
    """A fresh program for a process name (a key of :data:`PROGRAMS`).

    params: process-model parameters (fields of the kind's entry in :data:`PARAMS`); the
        others keep their defaults. ValueError names an unknown one.
    """
    try:
        program_cls = PROGRAMS[process]
    except KeyError:
        raise ValueError(f"unknown process {process!r} "
                         f"(choose from {', '.join(PROGRAMS)})") from None
    if not params:
        return program_cls()
    known = {f.name for f in fields(PARAMS[process])}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"process {process}: unknown parameter {unknown[0]!r} "
                         f"(choose from {', '.join(sorted(known))})")
    return program_cls(program_cls.new_process(
        PARAMS[process](**{k: float(v) for k, v in params.items()})))
