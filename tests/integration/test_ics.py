"""The ICS on the real network: PLCs running their processes, the HMI measuring them, an
operator write changing the process, an independent client (mbpoll) reading it."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.plan import ics_plan
from lab.devices import start_ics, stop_hmi
from lab.lifecycle import LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine
from plc.registers import TANK_MAP
from reporting.summary import flat_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def lab_config(tmp_path: Path) -> LabConfig:
    return LabConfig(plan=ics_plan(), log_dir=tmp_path, engine=resolve_engine("auto"),
                     datapath=choose_datapath("auto"))


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("t_s")]


def test_hmi_reads_live_values_and_a_pump_write_changes_the_tank(tmp_path: Path) -> None:
    pump = TANK_MAP.get("pump_on")
    writes = [{"t_s": 3.0, "plc": "plc1", "table": "coil", "address": pump.address,
               "value": 1}]
    with running_lab(lab_config(tmp_path)) as lab:
        ics = start_ics(lab, tmp_path, writes=writes)
        time.sleep(7.0)
        metrics = {m.plc: m for m in stop_hmi(lab, ics)}
        lab.check_healthy()
    # The HMI polled both PLCs across the two switches and saw their scan counters move.
    reqs = rows(tmp_path / "hmi_requests.csv")
    for plc in ("plc1", "plc2"):
        m = metrics[plc]
        print(f"{plc}: {m.polls} polls, availability {m.availability:.4f}, "
              f"p50 {m.latency_p50_ms:.2f} ms, p95 {m.latency_p95_ms:.2f} ms")
        assert m.polls >= 40 and m.availability >= 0.99
        counts = [int(r["values"].split()[1]) for r in reqs
                  if r["plc"] == plc and r["function"] == "read_input_registers"
                  and r["outcome"] == "ok" and int(r["count"]) > 1]
        assert len(set(counts)) > 20, f"{plc}: scan_count did not change: {counts[:5]}"
    write_rows = [r for r in reqs if r["function"] == "write_coil"]
    assert write_rows and write_rows[0]["outcome"] == "ok"
    # Ground truth: the level fell with the pump off, rose after the write turned it on.
    truth = rows(tmp_path / "plc1_state.csv")
    on = [i for i, r in enumerate(truth) if r["pump_on"] == "1"]
    assert on, "the pump never ran"
    first_on = on[0]
    before = [float(r["level_cm"]) for r in truth[:first_on]]
    after = [float(r["level_cm"]) for r in truth[first_on:first_on + 20]]
    assert before[-1] < before[0], "the level should fall while the pump is off"
    assert after[-1] > after[0], "the level should rise once the pump is written on"
    print(f"tank: {before[0]:.1f} -> {before[-1]:.1f} cm before the write, "
          f"{after[0]:.1f} -> {after[-1]:.1f} cm in the 2 s after")


def _mbpoll(lab, host: str, ip: str, table: str, count: int) -> list[int]:
    out = lab.run(host, ["mbpoll", "-m", "tcp", "-a", "1", "-0", "-r", "0", "-c", str(count),
                         "-t", table, "-1", "-o", "2", ip], timeout_s=15).stdout
    values = dict(re.findall(r"^\[(\d+)\]:\s+(-?\d+)", out, re.M))
    assert len(values) == count, out
    return [int(values[str(i)]) for i in range(count)]


def test_mbpoll_reads_what_the_ground_truth_shows(tmp_path: Path) -> None:
    with running_lab(lab_config(tmp_path)) as lab:
        ics = start_ics(lab, tmp_path, hmi=False)
        plc1 = ics.plcs[0]
        time.sleep(1.0)
        t_lo = time.monotonic()
        holding = _mbpoll(lab, "ews", plc1.ip, "4", 4)
        inputs = _mbpoll(lab, "ews", plc1.ip, "3", 3)
        t_hi = time.monotonic()
        coils = _mbpoll(lab, "ews", plc1.ip, "0", 3)
        lab.check_healthy()
    print(f"mbpoll from ews: holding {holding}, input {inputs}, coils {coils} "
          f"({t_hi - t_lo:.2f} s for two reads)")
    truth = rows(tmp_path / "plc1_state.csv")
    last = truth[-1]
    # Setpoints (holding registers, 0.1 cm) are constant: exact.
    assert holding == [round(float(last[c]) * 10) for c in (
        "level_high_sp_cm", "level_low_sp_cm", "level_hh_alarm_cm", "level_ll_alarm_cm")]
    assert inputs[0] == 1  # process_id: tank
    level_cm = inputs[2] / 10
    levels = [float(r["level_cm"]) for r in truth]
    assert min(levels) - 0.2 <= level_cm <= max(levels) + 0.2
    assert coils == [int(last["pump_on"]), int(last["valve_open"]), int(last["auto_mode"])]


def test_ics_experiment_bundle(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "experiments.run", "ics", "--quick",
                          "--duration-s", "6", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    bundle = (tmp_path / "ics" / "latest").resolve()
    summary = flat_metrics(json.loads((bundle / "summary.json").read_text()))
    for plc in ("plc1", "plc2"):
        assert summary[f"hmi_{plc}_availability"]["mean"] >= 0.99
        assert summary[f"hmi_{plc}_latency_p95_ms"]["mean"] > 0
    for name in ("process_trends.png", "hmi_latency_cdf.svg", "hmi_latency_timeseries.png",
                 "process.csv", "hmi.csv", "hmi_requests.csv"):
        assert (bundle / name).is_file(), name
    variables = {r["variable"] for r in rows(bundle / "process.csv")}
    assert {"level_cm", "pump_on", "pressure_bar"} <= variables
