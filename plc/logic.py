"""Control logic of the PLCs: pure functions from sensor values and setpoints to commands.

The logic sees what a real PLC program sees: sensor readings, the current state of its
output coils (which a Modbus client may have written) and the holding-register setpoints.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TankInputs:
    """One scan's view of the tank; ``pump_on`` is the coil as it stands (maybe written)."""

    level_cm: float
    pump_on: bool
    auto_mode: bool
    high_sp_cm: float
    low_sp_cm: float
    hh_alarm_cm: float
    ll_alarm_cm: float
    rim_switch: bool
    empty_switch: bool


@dataclass(frozen=True)
class TankOutputs:
    pump_on: bool
    alarm_high_high: bool
    alarm_low_low: bool
    alarm_overflow: bool
    alarm_dry: bool


def tank_logic(inp: TankInputs) -> TankOutputs:
    """Hysteresis level control: pump off at or above the high setpoint, on at or below low.

    Between the setpoints the pump keeps its current state, so a written pump coil holds
    until the next setpoint crossing. In manual mode the pump coil is left as written.
    The stop check comes first: with inconsistent setpoints (low >= high) the pump stays off.
    """
    pump_on = inp.pump_on
    if inp.auto_mode:
        if inp.level_cm >= inp.high_sp_cm:
            pump_on = False
        elif inp.level_cm <= inp.low_sp_cm:
            pump_on = True
    return TankOutputs(
        pump_on=pump_on,
        alarm_high_high=inp.level_cm >= inp.hh_alarm_cm,
        alarm_low_low=inp.level_cm <= inp.ll_alarm_cm,
        alarm_overflow=inp.rim_switch,
        alarm_dry=inp.empty_switch,
    )


@dataclass(frozen=True)
class PressureInputs:
    """One scan's view of the pump station."""

    pressure_bar: float
    pump_enable: bool
    auto_mode: bool
    setpoint_bar: float
    hh_alarm_bar: float
    ll_alarm_bar: float
    manual_speed_pct: float
    kp_pct_per_bar: float
    ki_pct_per_bar_s: float
    overpressure: bool
    deadhead: bool


@dataclass(frozen=True)
class PressureLogicState:
    """What the PI controller remembers between scans (the integral term, in % speed)."""

    integral_pct: float = 75.0


@dataclass(frozen=True)
class PressureOutputs:
    speed_cmd_pct: float
    alarm_high_high: bool
    alarm_low_low: bool
    alarm_overpressure: bool
    alarm_deadhead: bool


def _clamp_pct(value: float) -> float:
    return min(100.0, max(0.0, value))


def pressure_logic(inp: PressureInputs, state: PressureLogicState,
                   dt_s: float) -> tuple[PressureOutputs, PressureLogicState]:
    """PI pressure control with anti-windup; manual mode and a disabled pump bypass it.

    The integral tracks the manual speed so that switching back to auto is bumpless, and
    freezes while the pump is disabled.
    """
    integral = state.integral_pct
    if not inp.pump_enable:
        speed = 0.0
    elif not inp.auto_mode:
        speed = _clamp_pct(inp.manual_speed_pct)
        integral = speed
    else:
        error_bar = inp.setpoint_bar - inp.pressure_bar
        candidate = integral + inp.ki_pct_per_bar_s * error_bar * dt_s
        unclamped = inp.kp_pct_per_bar * error_bar + candidate
        # Integrate only while the output is not saturated in the direction of the error.
        if 0.0 <= unclamped <= 100.0 or (unclamped > 100.0) != (error_bar > 0):
            integral = _clamp_pct(candidate)
        speed = _clamp_pct(inp.kp_pct_per_bar * error_bar + integral)
    outputs = PressureOutputs(
        speed_cmd_pct=speed,
        alarm_high_high=inp.pressure_bar >= inp.hh_alarm_bar,
        alarm_low_low=inp.pressure_bar <= inp.ll_alarm_bar,
        alarm_overpressure=inp.overpressure,
        alarm_deadhead=inp.deadhead,
    )
    return outputs, PressureLogicState(integral_pct=integral)
