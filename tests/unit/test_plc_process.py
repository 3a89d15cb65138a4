"""Process models and control logic: pure, simulated time only."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plc.logic import (
    PressureInputs,
    PressureLogicState,
    TankInputs,
    pressure_logic,
    tank_logic,
)
from plc.process import PressureProcess, TankParams, TankProcess
from plc.program import PressureProgram, TankProgram, make_program
from plc.registers import PRESSURE_MAP, TANK_MAP, Table

CYCLE_S = 0.1


def run(program, seconds: float, coils=None, holding=None, every=None):
    """Scan ``program`` for ``seconds``; ``coils``/``holding`` override the image each scan."""
    image = program.image
    rows = []
    for _ in range(round(seconds / CYCLE_S)):
        c, h = list(image.coils), list(image.holding_registers)
        for address, value in (coils or {}).items():
            c[address] = value
        for address, value in (holding or {}).items():
            h[address] = value
        image = program.scan(c, h, CYCLE_S)
        rows.append(dict(zip(program.columns(), program.row(program.time_s), strict=True)))
    return rows


def test_tank_stays_between_setpoints_under_logic():
    rows = run(TankProgram(), 600)
    levels = [r["level_cm"] for r in rows[100:]]
    assert 39.0 < min(levels) < 42.0 and 158.0 < max(levels) < 161.0
    assert not any(r["alarm_overflow"] or r["alarm_dry"] or r["alarm_high_high"]
                   or r["alarm_low_low"] for r in rows)
    # the pump really cycles (several fill/drain periods in 10 min)
    starts = sum(1 for a, b in itertools.pairwise(rows)
                 if not a["pump_on"] and b["pump_on"])
    assert starts >= 3
    assert rows[-1]["spilled_l"] == 0.0


def test_tank_overflows_when_pump_forced_on():
    pump, auto = TANK_MAP.get("pump_on").address, TANK_MAP.get("auto_mode").address
    rows = run(TankProgram(), 300, coils={pump: True, auto: False})
    assert rows[-1]["level_cm"] == pytest.approx(200.0)
    assert rows[-1]["alarm_overflow"] == 1 and rows[-1]["alarm_high_high"] == 1
    assert rows[-1]["spilled_l"] > 100.0


def test_tank_overflows_when_high_setpoint_raised_above_rim():
    high = TANK_MAP.get("level_high_sp")
    rows = run(TankProgram(), 400, holding={high.address: high.to_raw(250.0)})
    assert any(r["alarm_overflow"] for r in rows)


def test_tank_runs_dry_when_pump_forced_off():
    pump, auto = TANK_MAP.get("pump_on").address, TANK_MAP.get("auto_mode").address
    rows = run(TankProgram(), 300, coils={pump: False, auto: False})
    assert rows[-1]["level_cm"] == 0.0
    assert rows[-1]["alarm_dry"] == 1 and rows[-1]["alarm_low_low"] == 1


def test_tank_written_pump_coil_holds_until_setpoint():
    """In auto mode a write to the pump coil changes the trajectory until the high setpoint."""
    tank = TankProgram()
    run(tank, 1)
    image = tank.image
    coils = list(image.coils)
    coils[TANK_MAP.get("pump_on").address] = True
    level_before = tank.process.level_cm
    tank.scan(coils, image.holding_registers, CYCLE_S)
    rows = run(tank, 5)
    assert all(r["pump_on"] for r in rows)
    assert rows[-1]["level_cm"] > level_before


def test_tank_step_length_does_not_change_the_trajectory():
    coarse, fine = TankProcess(pump_on=True), TankProcess(pump_on=True)
    coarse.step(10.0)
    for _ in range(1000):
        fine.step(0.01)
    assert coarse.level_cm == pytest.approx(fine.level_cm, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(level=st.floats(0, 200), pump=st.booleans(), valve=st.booleans(),
       dt=st.floats(0, 5))
def test_tank_level_stays_physical(level, pump, valve, dt):
    tank = TankProcess(level_cm=level, pump_on=pump, valve_open=valve)
    volume_before = tank.level_cm * tank.params.litres_per_cm
    tank.step(dt)
    assert 0.0 <= tank.level_cm <= TankParams().height_cm
    if not valve:  # a closed tank only gains (or spills) what the pump delivers
        gained = tank.level_cm * tank.params.litres_per_cm - volume_before + tank.spilled_l
        assert gained == pytest.approx((50.0 if pump else 0.0) * dt, abs=1e-6)


def test_tank_logic_hysteresis_and_manual():
    base = dict(pump_on=False, auto_mode=True, high_sp_cm=160, low_sp_cm=40,
                hh_alarm_cm=180, ll_alarm_cm=20, rim_switch=False, empty_switch=False)
    assert tank_logic(TankInputs(level_cm=39, **base)).pump_on
    assert not tank_logic(TankInputs(level_cm=100, **base)).pump_on
    assert tank_logic(TankInputs(level_cm=100, **{**base, "pump_on": True})).pump_on
    assert not tank_logic(TankInputs(level_cm=161, **{**base, "pump_on": True})).pump_on
    manual = {**base, "auto_mode": False, "pump_on": True}
    assert tank_logic(TankInputs(level_cm=199, **manual)).pump_on
    out = tank_logic(TankInputs(level_cm=185, **{**base, "rim_switch": True}))
    assert out.alarm_high_high and out.alarm_overflow and not out.alarm_low_low


def test_pressure_holds_setpoint_under_pi_control():
    rows = run(PressureProgram(), 300)
    pressures = [r["pressure_bar"] for r in rows[50:]]
    assert 3.7 < min(pressures) and max(pressures) < 4.3
    demands = [r["demand_pct"] for r in rows]
    assert max(demands) - min(demands) > 50  # the disturbance really varies
    assert not any(r["alarm_overpressure"] or r["alarm_high_high"] or r["alarm_low_low"]
                   for r in rows[10:])


def test_pressure_follows_a_new_setpoint():
    sp = PRESSURE_MAP.get("pressure_sp")
    rows = run(PressureProgram(), 120, holding={sp.address: sp.to_raw(5.0)})
    assert rows[-1]["pressure_bar"] == pytest.approx(5.0, abs=0.3)


def test_pressure_overpressure_when_speed_forced_to_full():
    auto = PRESSURE_MAP.get("auto_mode").address
    manual = PRESSURE_MAP.get("manual_speed")
    rows = run(PressureProgram(), 120, coils={auto: False},
               holding={manual.address: manual.to_raw(100.0)})
    assert max(r["pressure_bar"] for r in rows) > 8.0
    assert any(r["alarm_overpressure"] and r["alarm_high_high"] for r in rows)


def test_pressure_collapses_when_pump_disabled():
    enable = PRESSURE_MAP.get("pump_enable").address
    rows = run(PressureProgram(), 60, coils={enable: False})
    assert rows[-1]["pressure_bar"] < 0.5 and rows[-1]["pump_speed_pct"] < 1.0
    assert rows[-1]["alarm_low_low"] == 1


def test_pressure_deadhead_when_pump_cannot_beat_the_network_pressure():
    process = PressureProcess(pressure_bar=6.0, speed_pct=40.0, speed_cmd_pct=40.0)
    process.step(0.01)
    assert process.deadhead  # shut-off head at 40 % is 1.6 bar < 6 bar


def test_pi_anti_windup_and_bumpless_manual():
    inp = PressureInputs(pressure_bar=0.0, pump_enable=True, auto_mode=True,
                         setpoint_bar=4.0, hh_alarm_bar=6, ll_alarm_bar=2,
                         manual_speed_pct=30.0, kp_pct_per_bar=20, ki_pct_per_bar_s=10,
                         overpressure=False, deadhead=False)
    state = PressureLogicState(integral_pct=50.0)
    for _ in range(1000):
        out, state = pressure_logic(inp, state, 0.1)
    assert out.speed_cmd_pct == 100.0 and state.integral_pct <= 100.0
    manual = PressureInputs(**{**inp.__dict__, "auto_mode": False})
    out, state = pressure_logic(manual, state, 0.1)
    assert out.speed_cmd_pct == 30.0 and state.integral_pct == 30.0
    off = PressureInputs(**{**inp.__dict__, "pump_enable": False})
    out, _ = pressure_logic(off, state, 0.1)
    assert out.speed_cmd_pct == 0.0


def test_programs_are_deterministic_and_write_every_table():
    a, b = make_program("pressure"), make_program("pressure")
    assert run(a, 20) == run(b, 20)
    tank = make_program("tank")
    run(tank, 1)
    ir = tank.image.table(Table.INPUT_REGISTER)
    assert ir[TANK_MAP.get("process_id").address] == 1
    assert ir[TANK_MAP.get("scan_count").address] == 10
    assert ir[TANK_MAP.get("level").address] == TANK_MAP.get("level").to_raw(
        tank.process.level_cm)
    with pytest.raises(ValueError, match="unknown process"):
        make_program("boiler")
