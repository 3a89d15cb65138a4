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

from common.plant import ProcessKind
from plc.logic import (
    PressureInputs,
    PressureLogicState,
    TankInputs,
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


class PlcProgram(ABC):
    """A process, its logic and its register map, scanned one cycle at a time."""

    register_map: RegisterMap

    def __init__(self) -> None:
        self.scan_count = 0
        self.time_s = 0.0
        self._image = self.initial_image()

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
        self._scan(image, dt_s)
        self.scan_count += 1
        self.time_s += dt_s
        self._set(image, "process_id", self.register_map.process_id)
        scan_reg = self.register_map.get("scan_count")
        image.input_registers[scan_reg.address] = self.scan_count & 0xFFFF
        self._image = image
        return image

    @abstractmethod
    def _scan(self, image: RegisterImage, dt_s: float) -> None:
        """Process-specific part of a scan; edits ``image`` in place."""

    @abstractmethod
    def truth(self) -> dict[str, float]:
        """Ground-truth process variables at full precision, by CSV column name."""

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

    def __init__(self, process: TankProcess | None = None) -> None:
        self.process = process or TankProcess(
            level_cm=TANK_MAP.get("level").default)
        super().__init__()

    def _scan(self, image: RegisterImage, dt_s: float) -> None:
        c, h, p = image.coils, image.holding_registers, self.process
        out = tank_logic(TankInputs(
            level_cm=p.level_cm,
            pump_on=bool(self._eng(c, "pump_on")),
            auto_mode=bool(self._eng(c, "auto_mode")),
            high_sp_cm=self._eng(h, "level_high_sp"),
            low_sp_cm=self._eng(h, "level_low_sp"),
            hh_alarm_cm=self._eng(h, "level_hh_alarm"),
            ll_alarm_cm=self._eng(h, "level_ll_alarm"),
            rim_switch=p.overflowing,
            empty_switch=p.dry,
        ))
        p.pump_on = out.pump_on
        p.valve_open = bool(self._eng(c, "valve_open"))
        p.step(dt_s)
        self._set(image, "pump_on", out.pump_on)
        for name in ("alarm_high_high", "alarm_low_low", "alarm_overflow", "alarm_dry"):
            self._set(image, name, getattr(out, name))
        for name, value in self._measurements().items():
            self._set(image, name, value)

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"level": p.level_cm, "inflow": p.inflow_lps, "outflow": p.outflow_lps,
                "spilled": p.spilled_l}

    def truth(self) -> dict[str, float]:
        return {self.register_map.get(k).column: v for k, v in self._measurements().items()}


class PressureProgram(PlcProgram):
    """PLC 2: the booster pump station under PI pressure control."""

    register_map = PRESSURE_MAP

    def __init__(self, process: PressureProcess | None = None) -> None:
        self.process = process or PressureProcess(
            pressure_bar=PRESSURE_MAP.get("pressure").default)
        self.logic_state = PressureLogicState(integral_pct=self.process.speed_pct)
        super().__init__()

    def _scan(self, image: RegisterImage, dt_s: float) -> None:
        c, h, p = image.coils, image.holding_registers, self.process
        out, self.logic_state = pressure_logic(PressureInputs(
            pressure_bar=p.pressure_bar,
            pump_enable=bool(self._eng(c, "pump_enable")),
            auto_mode=bool(self._eng(c, "auto_mode")),
            setpoint_bar=self._eng(h, "pressure_sp"),
            hh_alarm_bar=self._eng(h, "pressure_hh_alarm"),
            ll_alarm_bar=self._eng(h, "pressure_ll_alarm"),
            manual_speed_pct=self._eng(h, "manual_speed"),
            kp_pct_per_bar=self._eng(h, "kp"),
            ki_pct_per_bar_s=self._eng(h, "ki"),
            overpressure=p.overpressure,
            deadhead=p.deadhead,
        ), self.logic_state, dt_s)
        p.pump_enabled = bool(self._eng(c, "pump_enable"))
        p.speed_cmd_pct = out.speed_cmd_pct
        p.step(dt_s)
        for name in ("alarm_high_high", "alarm_low_low", "alarm_overpressure",
                     "alarm_deadhead"):
            self._set(image, name, getattr(out, name))
        for name, value in self._measurements().items():
            self._set(image, name, value)

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"pressure": p.pressure_bar, "pump_speed": p.speed_pct, "flow": p.flow_lps,
                "demand": p.demand_pct}

    def truth(self) -> dict[str, float]:
        return {self.register_map.get(k).column: v for k, v in self._measurements().items()}


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

    def __init__(self, process: DosingProcess | None = None) -> None:
        self.process = process or DosingProcess(
            chlorine_mg_l=DOSING_MAP.get("chlorine").default)
        super().__init__()

    def _scan(self, image: RegisterImage, dt_s: float) -> None:
        c, h, p = image.coils, image.holding_registers, self.process
        out = dosing_logic(
            chlorine_mg_l=p.chlorine_mg_l, flow_lps=p.flow_lps,
            enable=bool(self._eng(c, "dosing_enable")),
            auto_mode=bool(self._eng(c, "auto_mode")),
            setpoint_mg_l=self._eng(h, "chlorine_sp"),
            hh_alarm_mg_l=self._eng(h, "chlorine_hh_alarm"),
            ll_alarm_mg_l=self._eng(h, "chlorine_ll_alarm"),
            manual_speed_pct=self._eng(h, "manual_speed"),
            kp_pct_per_mg_l=self._eng(h, "kp"), dose_ratio=self._eng(h, "dose_ratio"),
            overdose=p.overdose)
        p.pump_enabled = bool(self._eng(c, "dosing_enable"))
        p.pump_cmd_pct = out.speed_cmd_pct
        p.step(dt_s)
        for name in ("alarm_high_high", "alarm_low_low", "alarm_overdose"):
            self._set(image, name, getattr(out, name))
        for name, value in self._measurements().items():
            self._set(image, name, value)

    def _measurements(self) -> dict[str, float]:
        p = self.process
        return {"chlorine": p.chlorine_mg_l, "flow": p.flow_lps,
                "pump_speed": p.pump_speed_pct, "dosed": p.dosed_g}

    def truth(self) -> dict[str, float]:
        return {self.register_map.get(k).column: v for k, v in self._measurements().items()}


PROGRAMS: dict[str, type[PlcProgram]] = {"tank": TankProgram, "pressure": PressureProgram,
                                         "dosing": DosingProgram}

# Each kind's parameter dataclass (what a plant file's ``process.params`` may set).
PARAMS: dict[str, type] = {"tank": TankParams, "pressure": PressureParams,
                           "dosing": DosingParams}


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
    model_params = PARAMS[process](**{k: float(v) for k, v in params.items()})
    if process == "tank":
        return TankProgram(TankProcess(params=model_params,
                                       level_cm=TANK_MAP.get("level").default))
    if process == "pressure":
        return PressureProgram(PressureProcess(
            params=model_params, pressure_bar=PRESSURE_MAP.get("pressure").default))
    return DosingProgram(DosingProcess(params=model_params,
                                       chlorine_mg_l=DOSING_MAP.get("chlorine").default))
