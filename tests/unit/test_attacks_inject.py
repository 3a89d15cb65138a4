"""Command injection's pure parts (write plan, impact from ground truth) and both engines
against a real PLC process on 127.0.0.1 (no namespace check at this level)."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import pytest

from attacks.inject_plan import parse_assignment, write_plan
from attacks.modbus_client import Exchange, PymodbusEngine, ScapyEngine, scapy_reply
from attacks.tank_impact import tank_impact, tank_impact_from_csv
from common.groundtruth import read_ground_truth
from common.modbus import mbap, write_coil_request
from plc.program import TankProgram
from plc.registers import PRESSURE_MAP, TANK_MAP
from tests.support.plc_process import LOOPBACK, PlcProcess


# --- the write plan -----------------------------------------------------------------------
def test_plan_takes_the_logic_out_of_the_loop_first() -> None:
    plan = write_plan(TANK_MAP, pump_on=True, auto_off=True, valve_close=True,
                      assignments=[("level_high_sp", 195.0)])
    assert [w.name for w in plan] == ["auto_mode", "level_high_sp", "valve_open", "pump_on"]
    assert [(w.function_code, w.address, w.raw) for w in plan] == [
        (5, 2, 0), (6, 0, 1950), (5, 1, 0), (5, 0, 1)]


def test_plan_pump_coil_follows_the_map_and_raw_values_clamp() -> None:
    plan = write_plan(PRESSURE_MAP, pump_on=True, assignments=[("pressure_sp", 999.0)])
    assert [(w.name, w.raw) for w in plan] == [("pressure_sp", 65535), ("pump_enable", 1)]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({}, "nothing to write"),
    ({"assignments": [("level", 10.0)]}, "Modbus cannot write"),
    ({"assignments": [("alarm_overflow", 1.0)]}, "Modbus cannot write"),
    ({"assignments": [("nope", 1.0)]}, "no register 'nope'"),
])
def test_plan_refusals(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        write_plan(TANK_MAP, **kwargs)


def test_valve_close_needs_a_valve() -> None:
    with pytest.raises(ValueError, match="no register 'valve_open'"):
        write_plan(PRESSURE_MAP, valve_close=True)


@pytest.mark.parametrize("text", ["pump_on", "=1", "x=abc", "x=nan", "x=inf"])
def test_parse_assignment_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_assignment(text)


def test_parse_assignment() -> None:
    assert parse_assignment(" level_high_sp = 195.5") == ("level_high_sp", 195.5)


# --- impact from the ground truth ---------------------------------------------------------
def simulate(attack_at_s: float, until_s: float, cycle_s: float = 0.1) -> list[dict]:
    """Ground-truth rows of a tank PLC whose pump is forced on, valve shut, auto off at
    ``attack_at_s``: the program itself, no network."""
    prog = TankProgram()
    image = prog.image
    rows = []
    t_s = 0.0
    while t_s < until_s:
        coils, holding = list(image.coils), list(image.holding_registers)
        if t_s >= attack_at_s:
            coils[TANK_MAP.get("auto_mode").address] = False
            coils[TANK_MAP.get("valve_open").address] = False
            coils[TANK_MAP.get("pump_on").address] = True
        image = prog.scan(coils, holding, cycle_s)
        t_s += cycle_s
        rows.append(dict(zip(prog.columns(), prog.row(t_s), strict=True)))
    return rows


def test_impact_times_the_overflow_of_a_forced_pump() -> None:
    rows = simulate(attack_at_s=5.0, until_s=40.0)
    impact = tank_impact(rows, attack_t_s=5.0)
    # 100 cm at the start, falling at about 2.5 cm/s, then +5 cm/s (50 L/s into 10 L/cm)
    assert 85 < impact.level_at_attack_cm < 95
    assert impact.high_sp_cm == 160 and impact.low_sp_cm == 40
    assert impact.above_high_sp_after_s == pytest.approx((160 - impact.level_at_attack_cm) / 5,
                                                         abs=0.3)
    # alarm bits come from the logic, which sees the level of the scan before: a lag
    assert impact.alarm_high_high_after_s == pytest.approx(
        (180 - impact.level_at_attack_cm) / 5, abs=0.5)
    assert impact.alarm_overflow_after_s == pytest.approx(
        (200 - impact.level_at_attack_cm) / 5, abs=0.5)
    assert impact.above_high_sp_after_s < impact.alarm_high_high_after_s < \
        impact.alarm_overflow_after_s
    assert impact.left_band and impact.max_level_cm == pytest.approx(200)
    assert impact.spilled_l > 0
    assert impact.below_low_sp_after_s is None


def test_impact_of_nothing_is_no_impact() -> None:
    rows = simulate(attack_at_s=1e9, until_s=20.0)
    impact = tank_impact(rows, attack_t_s=2.0)
    assert not impact.left_band
    assert impact.above_high_sp_after_s is None and impact.alarm_overflow_after_s is None
    assert impact.spilled_l == 0 and impact.observed_s == pytest.approx(18.0, abs=0.11)


def test_impact_needs_rows_on_both_sides() -> None:
    rows = simulate(attack_at_s=1e9, until_s=2.0)
    with pytest.raises(ValueError, match="before and after"):
        tank_impact(rows, attack_t_s=0.0)
    with pytest.raises(ValueError, match="before and after"):
        tank_impact(rows, attack_t_s=100.0)


def test_impact_from_a_csv_with_a_torn_last_line(tmp_path: Path) -> None:
    rows = simulate(attack_at_s=3.0, until_s=30.0)
    cols = list(rows[0])
    text = ",".join(cols) + "\n" + "".join(
        ",".join(str(r[c]) for c in cols) + "\n" for r in rows) + "30.1,17"
    assert len(read_ground_truth(io.StringIO(text))) == len(rows)
    path = tmp_path / "plc1_state.csv"
    path.write_text(text)
    assert tank_impact_from_csv(path, 3.0) == tank_impact(rows, 3.0)


# --- reply decoding -----------------------------------------------------------------------
def test_scapy_reply_decodes_what_the_plc_sends() -> None:
    assert scapy_reply(mbap(1, bytes([0x85, 0x02]))) == (5, 2, [])
    assert scapy_reply(write_coil_request(1, 2, True)) == (5, None, [2, 1])
    assert scapy_reply(mbap(1, bytes([4, 4, 0, 1, 0x03, 0xE8]))) == (4, None, [1, 1000])
    assert scapy_reply(mbap(1, bytes([1, 1, 0b011])))[2][:3] == [1, 1, 0]


# --- both engines against a real PLC on loopback -----------------------------------------
@pytest.fixture
def plc(tmp_path: Path):
    proc = PlcProcess(tmp_path, "tank", "--cycle-ms", "50")
    yield proc
    proc.stop()


@pytest.mark.parametrize("engine_cls", [PymodbusEngine, ScapyEngine], ids=["pymodbus", "scapy"])
def test_engine_writes_and_reads_back(plc: PlcProcess, engine_cls: type) -> None:
    engine = engine_cls(LOOPBACK, plc.port, 1, 2.0)
    engine.connect()
    try:
        ident = engine.request(Exchange(0, 4, 0, "identify"))
        assert ident.outcome == "ok" and ident.values == [1]
        for w in write_plan(TANK_MAP, pump_on=True, auto_off=True,
                            assignments=[("level_high_sp", 195.0)]):
            ex = engine.request(Exchange(0, w.function_code, w.address, "write",
                                         request_value=w.raw))
            assert ex.outcome == "ok", ex
            assert ex.values == [w.address, w.raw]
        coils = engine.request(Exchange(0, 1, 0, "read", count=3))
        regs = engine.request(Exchange(0, 3, 0, "read", count=4))
        assert coils.values == [1, 1, 0] and regs.values[0] == 1950
        refused = engine.request(Exchange(0, 6, 99, "write", request_value=1))
        assert refused.outcome == "exception" and refused.exception_code == 2
        if engine_cls is ScapyEngine:
            assert refused.request_hex.endswith("00630001") and refused.reply_hex
    finally:
        engine.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the scan took the writes: auto off, pump held on
        last = plc.rows()[-1]
        if last["auto_mode"] == 0 and last["level_high_sp_cm"] == 195:
            break
        time.sleep(0.05)
    assert last["pump_on"] == 1 and last["auto_mode"] == 0 and last["level_high_sp_cm"] == 195


def test_engine_reports_a_dead_peer_without_raising(plc: PlcProcess) -> None:
    engine = ScapyEngine(LOOPBACK, plc.port, 1, 1.0)
    engine.connect()
    plc.stop()
    ex = engine.request(Exchange(0, 5, 0, "write", request_value=1))
    assert ex.outcome == "error" and ex.error
    engine.close()
