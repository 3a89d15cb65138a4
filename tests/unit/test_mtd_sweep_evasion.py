"""The pure parts of ``mtd-sweep`` and ``evasion``: intervals and condition names,
evasion scoring, and both experiments' plots from CSVs alone."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from common.errors import UserError
from common.plan import ics_plan
from experiments import evasion, mtd_sweep
from experiments.registry import get_experiment
from experiments.spec import resolve_config


# --- mtd-sweep ---------------------------------------------------------------------------------
def test_intervals_sorted_unique_and_checked() -> None:
    assert mtd_sweep.parse_intervals("5, 1,2,1") == [1.0, 2.0, 5.0]
    assert mtd_sweep.parse_intervals("0.5") == [0.5]
    for bad in ("", "1,x", "0.1", "1e9", "nan"):
        with pytest.raises(UserError, match="--intervals-s"):
            mtd_sweep.parse_intervals(bad)


def test_condition_names_round_trip() -> None:
    for v in (0.5, 1.0, 2.0, 30.0, 2.5):
        assert mtd_sweep.interval_of(mtd_sweep.condition_name(v)) == v
    assert mtd_sweep.condition_name(1.0) == "hop1s"
    assert mtd_sweep.condition_name(0.5) == "hop0.5s"
    for bad in ("rhm", "hops", "hop-1s", "hopxs", "fixed"):
        with pytest.raises(ValueError):
            mtd_sweep.interval_of(bad)


def test_conditions_follow_intervals_and_quick() -> None:
    exp = get_experiment("mtd-sweep")
    full = resolve_config(exp, None, {})
    assert exp.conditions(full) == ["hop1s", "hop2s", "hop5s", "hop10s", "hop30s"]
    quick = resolve_config(exp, None, {}, quick=True)
    assert exp.conditions(quick) == ["hop1s", "hop30s"]
    assert quick["stages"] == "discovery,syn" and full["exploit_gap_s"] == 5.0
    with pytest.raises(UserError):
        resolve_config(exp, None, {"defense": "none"})


def test_cpu_share_pct() -> None:
    assert mtd_sweep.cpu_share_pct(100, 150, 10.0, 100.0) == pytest.approx(5.0)
    assert mtd_sweep.cpu_share_pct(0, 200, 1.0, 100.0) == pytest.approx(200.0)  # 2 cores
    assert math.isnan(mtd_sweep.cpu_share_pct(0, 10, 0.0, 100.0))
    assert math.isnan(mtd_sweep.CpuReading().pct)
    assert mtd_sweep.CpuReading(cpu_s=0.5, wall_s=10.0).pct == pytest.approx(5.0)


def test_metric_by_interval_skips_invalid_and_foreign_rows() -> None:
    rows = [
        {"condition": "hop1s", "metric": "m", "value": "0", "valid": "true"},
        {"condition": "hop1s", "metric": "m", "value": "1", "valid": "false"},
        {"condition": "hop5s", "metric": "m", "value": "1", "valid": "true"},
        {"condition": "hop5s", "metric": "other", "value": "7", "valid": "true"},
        {"condition": "none", "metric": "m", "value": "9", "valid": "true"},
    ]
    assert mtd_sweep.metric_by_interval(rows, "m") == {1.0: [0.0], 5.0: [1.0]}


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_sweep_plots_from_csv_only(tmp_path: Path) -> None:
    rows = []
    for trial in (1, 2):
        for cond, success, cpu in (("hop1s", 0.0, 3.0), ("hop30s", 1.0, 1.0)):
            for metric, value in (("attacker_modbus_success", success),
                                  ("findings_valid_at_exploit", success),
                                  ("hmi_availability", 1.0), ("controller_cpu_pct", cpu),
                                  ("hop_latency_p50_ms", 2.0), ("hop_latency_p95_ms", 4.0)):
                rows.append({"trial": trial, "condition": cond, "metric": metric,
                             "value": value, "valid": "true"})
    _write_csv(tmp_path / "metrics.csv", rows)
    (tmp_path / "config.json").write_text(json.dumps({"defense": "rhm"}))
    plots = mtd_sweep.plot(tmp_path)
    assert [p for p, _ in plots] == ["tradeoff", "controller_cpu", "hop_latency"]
    for stem, caption in plots:
        assert (tmp_path / f"{stem}.png").is_file() and (tmp_path / f"{stem}.svg").is_file()
        assert "hop interval" in caption


# --- evasion -----------------------------------------------------------------------------------
def test_evasion_conditions_and_params() -> None:
    exp = get_experiment("evasion")
    cfg = resolve_config(exp, None, {}, quick=True)
    assert exp.conditions(cfg) == ["fixed", "hopping"]
    assert cfg["duration_s"] == 10.0
    with pytest.raises(UserError, match="duration_s"):
        resolve_config(exp, None, {"duration_s": 0.5})


def test_probe_targets_scoped_shuffled_and_seeded() -> None:
    plan = ics_plan()
    a = evasion.probe_targets(plan, "10.0.0.0/27", ["10.0.0.66"], random.Random(3))
    b = evasion.probe_targets(plan, "10.0.0.0/27", ["10.0.0.66"], random.Random(3))
    assert a == b and len(a) == 30 and sorted(a) != a
    assert {"10.0.0.11", "10.0.0.21", "10.0.0.22"} <= set(a)
    assert "10.0.0.21" not in evasion.probe_targets(plan, "10.0.0.21,10.0.0.22",
                                                    ["10.0.0.21"], random.Random(1))
    with pytest.raises(UserError, match="--targets"):
        evasion.probe_targets(plan, "192.168.1.0/24", [], random.Random(1))
    with pytest.raises(UserError, match="nothing left"):
        evasion.probe_targets(plan, "10.0.0.21", ["10.0.0.21"], random.Random(1))


def _probe(t_s: float, state: str, owner: str | None, port: int = 502,
           source: str = "10.0.0.66") -> evasion.Probe:
    return evasion.Probe(t_s, source, "10.0.0.x", port, state, owner)


def test_score_evasion_counts_answers_before_and_after_the_block() -> None:
    probes = [_probe(0.1, "filtered", None), _probe(0.5, "closed", "ews", 80),
              _probe(1.0, "open", "plc1", source="10.0.0.250"),
              _probe(1.2, "closed", "hmi", 80, source="10.0.0.251"),
              _probe(3.0, "filtered", "plc2"), _probe(3.5, "closed", "plc2", 80)]
    s = evasion.score_evasion(probes, {"ews", "plc1", "plc2", "hmi"}, {("plc1", 502),
                                                                        ("plc2", 502)}, 2.0)
    assert s.hosts_found == 4 and s.host_recall == 1.0
    assert s.open_ports_found == 1 and s.port_recall == 0.5
    assert s.probes_sent == 6 and s.probes_answered == 4
    assert s.probes_answered_after_block == 1
    assert s.sources_used == 3
    assert s.first_found_s == {"ews": 0.5, "plc1": 1.0, "hmi": 1.2, "plc2": 3.5}
    never = evasion.score_evasion(probes, {"ews"}, set(), math.nan)
    assert never.probes_answered_after_block == 0 and math.isnan(never.port_recall)
    assert never.hosts_found == 1


def test_first_detection_keys_on_mac_after_the_start(tmp_path: Path) -> None:
    log = tmp_path / "detections.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in (
        {"time_unix_s": 99.0, "src_mac": "02:00:00:00:00:42"},    # before the attack
        {"time_unix_s": 103.5, "src_mac": "02:00:00:00:00:0b"},   # another host
        {"time_unix_s": 102.25, "src_mac": "02:00:00:00:00:42"},
        {"time_unix_s": 104.0, "src_mac": "02:00:00:00:00:42"},
    )) + "\n{torn")
    dets = evasion.read_detections(log)
    assert len(dets) == 4
    assert evasion.first_detection_s(dets, "02:00:00:00:00:42", 100.0) == pytest.approx(2.25)
    assert math.isnan(evasion.first_detection_s(dets, "02:00:00:00:00:99", 100.0))
    assert evasion.read_detections(tmp_path / "missing.jsonl") == []


def test_evasion_plots_from_csv_only_and_say_when_both_are_blocked(tmp_path: Path) -> None:
    plan = ics_plan()
    plan.save(tmp_path / "plan.json")
    (tmp_path / "config.json").write_text(json.dumps({"duration_s": 10}))
    rows = []
    for cond in ("fixed", "hopping"):
        for metric, value in (("attacker_blocked", 1.0), ("time_to_block_s", 3.0),
                              ("hosts_found", 1.0)):
            rows.append({"trial": 1, "condition": cond, "metric": metric, "value": value,
                         "valid": "true"})
    _write_csv(tmp_path / "metrics.csv", rows)
    _write_csv(tmp_path / "evasion_found.csv", [
        {"trial": 1, "condition": "fixed", "host": "ews", "first_answer_s": 1.5}])
    _write_csv(tmp_path / "detections.csv", [
        {"trial": 1, "condition": c, "t_after_start_s": 3.0,
         "src_mac": plan.attacker.mac, "src_host": "attacker", "src_ip": "10.0.0.66",
         "threshold": "max_dsts", "distinct_dsts": 9, "distinct_ports": 2, "block_s": 60}
        for c in ("fixed", "hopping")])
    plots = evasion.plot(tmp_path)
    assert [p for p, _ in plots] == ["hosts_over_time", "time_to_block"]
    for stem, caption in plots:
        assert (tmp_path / f"{stem}.png").is_file()
        assert "hopping attacker was blocked too" in caption
