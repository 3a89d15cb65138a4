"""Physical process models: plain state plus ``step(dt_s)``; no I/O, no clock, no randomness.

Each model integrates with fixed sub-steps of at most ``MAX_SUBSTEP_S`` so that a step of
any length gives the same trajectory as many short ones (up to the sub-step error).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_SUBSTEP_S = 0.01


def _substeps(dt_s: float) -> tuple[int, float]:
    """Number and length of the sub-steps that make up ``dt_s``."""
    if dt_s < 0:
        raise ValueError(f"dt_s must be >= 0, got {dt_s}")
    n = max(1, math.ceil(dt_s / MAX_SUBSTEP_S))
    return n, dt_s / n


def _drive_steps(dt_s: float, speed_pct: float, cmd_pct: float, enabled: bool,
                 tau_s: float) -> Iterator[tuple[float, float]]:
    """The sub-steps of ``dt_s`` for a variable-speed drive: (sub-step length, speed).

    The speed follows the command (clamped to 0..100 %; 0 when disabled) as a first-order
    lag with time constant ``tau_s``.
    """
    n, h = _substeps(dt_s)
    target = min(100.0, max(0.0, cmd_pct)) if enabled else 0.0
    alpha = h / (tau_s + h)
    for _ in range(n):
        speed_pct += alpha * (target - speed_pct)
        yield h, speed_pct


def _sine(t_s: float, period_s: float) -> float:
    """The daily-cycle stand-in of the disturbances: a sine of ``period_s``, -1..1."""
    return math.sin(2.0 * math.pi * t_s / period_s)


@dataclass(frozen=True)
class TankParams:
    """A vertical cylindrical tank fed by an on/off pump, drained through a valve.

    valve_coeff_lps_per_sqrt_cm: Torricelli outflow, ``coeff * sqrt(level_cm)`` L/s.
    switch_band_cm: the rim and empty level switches trip this close to rim and bottom.
    """

    height_cm: float = 200.0
    area_m2: float = 1.0
    pump_flow_lps: float = 50.0
    valve_coeff_lps_per_sqrt_cm: float = 2.5
    switch_band_cm: float = 0.05

    @property
    def litres_per_cm(self) -> float:
        return self.area_m2 * 10.0  # 1 m2 x 1 cm = 10 L


@dataclass
class TankProcess:
    """State of the tank; the pump and valve are inputs set before each ``step``.

    spilled_l: water lost over the rim since start (the damage of an overflow).
    """

    params: TankParams = field(default_factory=TankParams)
    level_cm: float = 100.0
    pump_on: bool = False
    valve_open: bool = True
    inflow_lps: float = 0.0
    outflow_lps: float = 0.0
    spilled_l: float = 0.0
    time_s: float = 0.0

    def step(self, dt_s: float) -> None:
        """Advance the tank by ``dt_s`` seconds with the current pump and valve."""
        p = self.params
        n, h = _substeps(dt_s)
        inflow = p.pump_flow_lps if self.pump_on else 0.0
        outflow = 0.0
        for _ in range(n):
            outflow = (p.valve_coeff_lps_per_sqrt_cm * math.sqrt(self.level_cm)
                       if self.valve_open else 0.0)
            level = self.level_cm + (inflow - outflow) * h / p.litres_per_cm
            if level > p.height_cm:
                self.spilled_l += (level - p.height_cm) * p.litres_per_cm
                level = p.height_cm
            self.level_cm = max(0.0, level)
        self.inflow_lps = inflow
        self.outflow_lps = outflow
        self.time_s += dt_s

    @property
    def overflowing(self) -> bool:
        """The rim level switch: water at the rim (spilling while the pump runs)."""
        return self.level_cm >= self.params.height_cm - self.params.switch_band_cm

    @property
    def dry(self) -> bool:
        """The empty level switch."""
        return self.level_cm <= self.params.switch_band_cm


@dataclass(frozen=True)
class PressureParams:
    """A variable-speed pump feeding a pipe network with a varying consumer demand.

    Pump curve: at speed fraction s it delivers ``max_flow_lps * s * sqrt(1 - p / (shutoff_bar
    * s^2))``. Demand: ``demand_coeff_lps_per_sqrt_bar * opening * sqrt(p)`` with the
    opening ``demand_base_pct + demand_swing_pct * sin(2 pi t / demand_period_s)``.
    capacitance_l_per_bar: litres the network stores per bar (pipe elasticity, air vessel).
    """

    max_flow_lps: float = 30.0
    shutoff_bar: float = 10.0
    demand_coeff_lps_per_sqrt_bar: float = 12.0
    capacitance_l_per_bar: float = 20.0
    speed_tau_s: float = 1.0
    design_bar: float = 8.0
    demand_base_pct: float = 50.0
    demand_swing_pct: float = 30.0
    demand_period_s: float = 60.0
    deadhead_flow_lps: float = 0.3
    deadhead_speed_pct: float = 10.0


@dataclass
class PressureProcess:
    """State of the pump station; ``speed_cmd_pct`` and ``pump_enabled`` are the inputs."""

    params: PressureParams = field(default_factory=PressureParams)
    pressure_bar: float = 4.0
    speed_pct: float = 75.0
    speed_cmd_pct: float = 75.0
    pump_enabled: bool = True
    flow_lps: float = 0.0
    demand_lps: float = 0.0
    demand_pct: float = 50.0
    time_s: float = 0.0

    def __post_init__(self) -> None:
        self.demand_pct = self._demand_pct_at(self.time_s)
        self.flow_lps = self._pump_flow_lps()

    def _pump_flow_lps(self) -> float:
        s = self.speed_pct / 100.0
        if s <= 0.0:
            return 0.0
        head = 1.0 - max(0.0, self.pressure_bar) / (self.params.shutoff_bar * s * s)
        return self.params.max_flow_lps * s * math.sqrt(max(0.0, head))

    def _demand_pct_at(self, t_s: float) -> float:
        p = self.params
        return p.demand_base_pct + p.demand_swing_pct * _sine(t_s, p.demand_period_s)

    def step(self, dt_s: float) -> None:
        """Advance the network by ``dt_s`` seconds with the current speed command."""
        p = self.params
        for h, speed_pct in _drive_steps(dt_s, self.speed_pct, self.speed_cmd_pct,
                                         self.pump_enabled, p.speed_tau_s):
            self.speed_pct = speed_pct
            self.demand_pct = self._demand_pct_at(self.time_s)
            self.flow_lps = self._pump_flow_lps()
            self.demand_lps = (p.demand_coeff_lps_per_sqrt_bar * self.demand_pct / 100.0
                               * math.sqrt(max(0.0, self.pressure_bar)))
            self.pressure_bar = max(0.0, self.pressure_bar
                                    + (self.flow_lps - self.demand_lps) * h
                                    / p.capacitance_l_per_bar)
            self.time_s += h

    @property
    def overpressure(self) -> bool:
        """Pressure above the pipe network's design limit."""
        return self.pressure_bar > self.params.design_bar

    @property
    def deadhead(self) -> bool:
        """The pump turns but moves (almost) no water: it heats up."""
        return (self.speed_pct >= self.params.deadhead_speed_pct
                and self.flow_lps < self.params.deadhead_flow_lps)


@dataclass(frozen=True)
class DosingParams:
    """Chlorine dosing into a contact tank that the treated water flows through.

    A metering pump doses hypochlorite at ``pump_max_mg_s * speed``; the tank is well mixed
    (``dC/dt = (dose - Q C) / V - decay C``); the flow ``Q`` varies around its mean with a
    sine of ``flow_period_s``.
    decay_per_s: first-order chlorine demand of the water.
    overdose_mg_l: concentration above which the water is unsafe to drink.
    """

    contact_volume_l: float = 2000.0
    flow_mean_lps: float = 40.0
    flow_swing_pct: float = 25.0
    flow_period_s: float = 90.0
    pump_max_mg_s: float = 200.0
    pump_tau_s: float = 1.0
    decay_per_s: float = 0.0005
    overdose_mg_l: float = 4.0


@dataclass
class DosingProcess:
    """State of the dosing station; ``pump_cmd_pct`` and ``pump_enabled`` are the inputs.

    dosed_g: chlorine dosed since start (what an attack that runs the pump wastes).
    """

    params: DosingParams = field(default_factory=DosingParams)
    chlorine_mg_l: float = 1.0
    pump_speed_pct: float = 20.0
    pump_cmd_pct: float = 20.0
    pump_enabled: bool = True
    flow_lps: float = 0.0
    dosed_g: float = 0.0
    time_s: float = 0.0

    def __post_init__(self) -> None:
        self.flow_lps = self._flow_at(self.time_s)

    def _flow_at(self, t_s: float) -> float:
        p = self.params
        return p.flow_mean_lps * (1.0 + p.flow_swing_pct / 100.0 * _sine(t_s, p.flow_period_s))

    def step(self, dt_s: float) -> None:
        """Advance the contact tank by ``dt_s`` seconds with the current pump command."""
        p = self.params
        for h, speed_pct in _drive_steps(dt_s, self.pump_speed_pct, self.pump_cmd_pct,
                                         self.pump_enabled, p.pump_tau_s):
            self.pump_speed_pct = speed_pct
            self.flow_lps = max(0.0, self._flow_at(self.time_s))
            dose_mg_s = p.pump_max_mg_s * self.pump_speed_pct / 100.0
            self.dosed_g += dose_mg_s * h / 1000.0
            change = ((dose_mg_s - self.flow_lps * self.chlorine_mg_l) / p.contact_volume_l
                      - p.decay_per_s * self.chlorine_mg_l)
            self.chlorine_mg_l = max(0.0, self.chlorine_mg_l + change * h)
            self.time_s += h

    @property
    def overdose(self) -> bool:
        """Chlorine above the safe limit."""
        return self.chlorine_mg_l > self.params.overdose_mg_l
