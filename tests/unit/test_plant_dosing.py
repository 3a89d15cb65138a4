"""The third process model: chlorine dosing (pure model, logic and program; no root)."""

from __future__ import annotations

import pytest

from plc.process import DosingParams, DosingProcess
from plc.program import DosingProgram, make_program
from plc.registers import DOSING_MAP, Table


def _run(program: DosingProgram, seconds: float, dt_s: float = 0.1,
         coils: list[bool] | None = None, holding: list[int] | None = None) -> None:
    image = program.image
    for _ in range(round(seconds / dt_s)):
        image = program.scan(coils if coils is not None else image.coils,
                             holding if holding is not None else image.holding_registers,
                             dt_s)


def test_flow_paced_control_holds_the_setpoint_through_the_flow_swing() -> None:
    program = DosingProgram()
    _run(program, 300.0)
    truth = program.truth()
    assert truth["chlorine_mg_l"] == pytest.approx(1.0, abs=0.15)
    assert not any(program.image.discrete_inputs)


def test_pump_forced_to_full_speed_in_manual_overdoses() -> None:
    program = DosingProgram()
    hr = program.image.holding_registers
    hr[DOSING_MAP.get("manual_speed").address] = DOSING_MAP.get("manual_speed").to_raw(100)
    coils = [True, False]  # enabled, manual
    _run(program, 240.0, coils=coils, holding=hr)
    assert program.process.chlorine_mg_l > DosingParams().overdose_mg_l
    di = program.image.table(Table.DISCRETE_INPUT)
    assert di[DOSING_MAP.get("alarm_overdose").address]
    assert di[DOSING_MAP.get("alarm_high_high").address]


def test_disabled_pump_lets_chlorine_wash_out() -> None:
    program = DosingProgram()
    _run(program, 200.0, coils=[False, True])
    assert program.process.chlorine_mg_l < 0.2
    assert program.process.pump_speed_pct == pytest.approx(0.0, abs=1e-6)


def test_ground_truth_columns_and_params() -> None:
    program = make_program("dosing", {"flow_mean_lps": 10.0})
    assert isinstance(program, DosingProgram)
    assert program.process.params.flow_mean_lps == 10.0
    assert program.columns()[:3] == ("t_s", "dosing_enable", "auto_mode")
    assert "chlorine_mg_l" in program.columns() and "dosed_g" in program.columns()
    with pytest.raises(ValueError, match="unknown parameter 'bogus'"):
        make_program("dosing", {"bogus": 1.0})


def test_step_length_does_not_change_the_trajectory() -> None:
    a, b = DosingProcess(), DosingProcess()
    a.step(10.0)
    for _ in range(100):
        b.step(0.1)
    assert a.chlorine_mg_l == pytest.approx(b.chlorine_mg_l, rel=1e-3)
