"""attacks experiment: conditions, attack arguments, window slicing, false readings,
deviation metrics, ARP and attacker figures, and plots from CSVs only (no root)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from attacks.tank_impact import tank_impact
from common.errors import UserError
from common.plan import ics_plan
from experiments.attacks_exp import EXPERIMENT, attack_args, parse_conditions
from experiments.attacks_plots import plot
from experiments.attacks_scoring import (
    CONDITIONS,
    arp_restored,
    attacker_metrics,
    deviation_metrics,
    false_reading_share,
    hmi_readings,
    neighbor_mac,
    window_figures,
    window_records,
)
from experiments.registry import EXPERIMENTS
from experiments.spec import resolve_config
from plc.metrics import RequestRecord


def rec(t_s: float, plc: str = "plc1", poll: int = 0, outcome: str = "ok",
        latency_ms: float = 1.0, function: str = "read_input_registers",
        values: str = "") -> RequestRecord:
    return RequestRecord(t_s, plc, poll, function, 0, 6, latency_ms, outcome, values)


def test_registered_and_quick_is_short() -> None:
    assert EXPERIMENTS["attacks"] is EXPERIMENT
    cfg = resolve_config(EXPERIMENT, None, {}, quick=True)
    assert cfg["window_s"] <= 5 and cfg["inject_observe_s"] <= 20 and cfg["trials"] == 1
    assert EXPERIMENT.conditions is not None
    assert EXPERIMENT.conditions(cfg) == list(CONDITIONS)


def test_parse_conditions() -> None:
    assert parse_conditions("all") == list(CONDITIONS)
    assert parse_conditions("fuzz, baseline") == ["baseline", "fuzz"]
    with pytest.raises(UserError, match="unknown condition 'dos'"):
        parse_conditions("baseline,dos")
    with pytest.raises(UserError):
        parse_conditions(" , ")


def test_attack_args_target_the_first_plc_and_are_bounded() -> None:
    plan = ics_plan()
    cfg = resolve_config(EXPERIMENT, None, {}, quick=True)
    plc1 = plan.host("plc1").ip
    assert attack_args("baseline", cfg, plan, 7) == []
    inject = attack_args("inject", cfg, plan, 7)
    assert inject[:2] == ["--targets", plc1]
    assert {"--pump-on", "--auto-off", "--valve-close"} <= set(inject)
    assert inject[inject.index("--hold-s") + 1] == "5"
    mitm = attack_args("mitm", cfg, plan, 7)
    assert mitm[1] == f"{plan.host('hmi').ip},{plc1}"
    assert mitm[mitm.index("--tamper") + 1] == "level=1999"
    assert "--tamper" not in attack_args("mitm", {**cfg, "mitm_tamper": ""}, plan, 7)
    flood = attack_args("synflood", cfg, plan, 7)
    assert flood[flood.index("--duration-s") + 1] == "5"
    assert flood[flood.index("--seed") + 1] == "7"
    fuzz = attack_args("fuzz", cfg, plan, 7)
    assert int(fuzz[fuzz.index("--frames") + 1]) == math.ceil(cfg["fuzz_rate_fps"] * 5)
    with pytest.raises(ValueError):
        attack_args("nope", cfg, plan, 7)


def test_window_slicing_is_half_open_and_per_plc() -> None:
    records = [rec(t, poll=i) for i, t in enumerate((0.5, 1.0, 1.5, 2.0, 2.5))]
    assert [r.t_s for r in window_records(records, 1.0, 2.0)] == [1.0, 1.5]
    records = [rec(1.0, poll=1, latency_ms=2.0), rec(1.1, poll=2, outcome="timeout"),
               rec(1.2, poll=3, latency_ms=4.0), rec(1.3, plc="plc2", poll=1),
               rec(5.0, poll=4, outcome="timeout")]
    fig = window_figures(records, "plc1", 1.0, 2.0)
    assert fig["polls"] == 3 and fig["availability"] == pytest.approx(2 / 3)
    assert fig["latency_p50_ms"] == pytest.approx(3.0)
    assert fig["longest_outage_s"] == pytest.approx(0.1)
    assert fig["timeouts"] == 1
    assert math.isnan(window_figures(records, "plc1", 10.0, 11.0)["availability"])


def test_hmi_readings_pick_the_register_from_covering_reads() -> None:
    records = [rec(1.0, values="1 5 955 0 250 0"),
               rec(1.1, values="1 6 1999 0 250 0"),
               rec(1.2, outcome="timeout"),
               rec(1.3, plc="plc2", values="2 1 7"),
               rec(1.4, function="read_coils", values="1 0 1")]
    assert hmi_readings(records, "plc1", "read_input_registers", 2, 0.1) == [
        (1.0, pytest.approx(95.5)), (1.1, pytest.approx(199.9))]
    assert hmi_readings(records, "plc1", "read_input_registers", 9, 0.1) == []


def test_false_reading_share_against_the_ground_truth() -> None:
    truth = [(t / 10, 100.0 - t / 10) for t in range(0, 101)]  # 100 cm falling 1 cm/s
    # HMI clock 2 s behind the PLC's: HMI t=1 is PLC t=3, true level 97.
    honest = [(1.0, 97.0), (2.0, 96.2), (3.0, 95.0)]
    assert false_reading_share(honest, truth, offset_s=2.0) == 0.0
    tampered = [(1.0, 199.9), (2.0, 96.0), (3.0, 199.9), (4.0, 199.9)]
    assert false_reading_share(tampered, truth, offset_s=2.0) == pytest.approx(0.75)
    # A reading out of the truth's reach is not counted.
    assert false_reading_share([(50.0, 199.9), (1.0, 97.0)], truth, 2.0) == 0.0
    assert math.isnan(false_reading_share([], truth, 0.0))
    # A misaligned clock (offset wrong by 3 s) shows up as false readings: the slack matters.
    assert false_reading_share(honest, truth, offset_s=5.0) == 1.0


def truth_row(t_s: float, level: float, hh: int = 0, overflow: int = 0,
              spilled: float = 0.0) -> dict[str, float]:
    return {"t_s": t_s, "level_cm": level, "level_high_sp_cm": 160.0,
            "level_low_sp_cm": 40.0, "alarm_high_high": hh, "alarm_overflow": overflow,
            "spilled_l": spilled}


def test_deviation_metrics_of_an_overflow_and_of_a_quiet_tank() -> None:
    rows = [truth_row(0.0, 100.0), truth_row(1.0, 150.0), truth_row(2.0, 170.0),
            truth_row(3.0, 185.0, hh=1), truth_row(4.0, 200.0, hh=1, overflow=1, spilled=30)]
    m = deviation_metrics(tank_impact(rows, 0.5))
    assert m["tank_max_over_high_sp_cm"] == pytest.approx(40.0)
    assert m["tank_left_band"] == 1.0
    assert m["tank_above_high_sp_after_s"] == pytest.approx(1.5)
    assert m["tank_alarm_high_high_after_s"] == pytest.approx(2.5)
    assert m["tank_overflow_after_s"] == pytest.approx(3.5)
    assert m["tank_spilled_l"] == pytest.approx(30.0)
    quiet = deviation_metrics(tank_impact([truth_row(0, 90), truth_row(1, 85)], 0.5))
    assert quiet["tank_max_over_high_sp_cm"] == 0.0 and quiet["tank_left_band"] == 0.0
    assert "tank_overflow_after_s" not in quiet and "tank_above_high_sp_after_s" not in quiet


def test_attacker_metrics_from_outcomes() -> None:
    assert attacker_metrics("inject", {"writes_ok": 9, "writes_refused": 1}) == {
        "inject_writes_accepted": 9.0, "inject_writes_refused": 1.0}
    mitm = attacker_metrics("mitm", {"exchange_count": 40, "intercepted_frames": {
        "A->B": 3, "B->A": 4}, "tamper": {"responses_rewritten": 12}})
    assert mitm == {"mitm_modbus_exchanges": 40.0, "mitm_frames_intercepted": 7.0,
                    "mitm_responses_tampered": 12.0}
    assert attacker_metrics("mitm", {"tamper": None})["mitm_responses_tampered"] == 0.0
    assert attacker_metrics("synflood", {"flood": {"packets": 100, "rate_pps": 20.0}}) == {
        "flood_packets_sent": 100.0, "flood_rate_pps": 20.0}
    assert attacker_metrics("fuzz", {"barrage": {"frames": 5, "connections": 2}}) == {
        "fuzz_frames_sent": 5.0, "fuzz_connections": 2.0}
    assert attacker_metrics("baseline", {}) == {}


def test_arp_entries_restored_or_absent() -> None:
    text = ("10.0.0.21 dev hmi-eth0 lladdr 02:00:00:00:00:15 REACHABLE\n"
            "10.0.0.22 dev hmi-eth0  FAILED\n")
    assert neighbor_mac(text, "10.0.0.21") == "02:00:00:00:00:15"
    assert neighbor_mac(text, "10.0.0.22") is None
    assert neighbor_mac(text, "10.0.0.2") is None  # a prefix of another address is not it
    expected = {"hmi:10.0.0.21": "02:00:00:00:00:15", "plc1:10.0.0.11": "02:00:00:00:00:0B"}
    assert arp_restored({"hmi:10.0.0.21": "02:00:00:00:00:15", "plc1:10.0.0.11": None},
                        expected)
    assert arp_restored({"hmi:10.0.0.21": "02:00:00:00:00:15",
                         "plc1:10.0.0.11": "02:00:00:00:00:0b"}, expected)
    # Still poisoned: the HMI maps the PLC to the attacker's MAC.
    assert not arp_restored({"hmi:10.0.0.21": "02:00:00:00:00:42",
                             "plc1:10.0.0.11": None}, expected)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_plots_from_csvs_only(tmp_path: Path) -> None:
    metrics = []
    for trial in (1, 2):
        for i, cond in enumerate(CONDITIONS):
            metrics += [
                {"trial": trial, "condition": cond, "metric": "hmi_availability",
                 "value": 1.0 - 0.1 * i, "valid": True},
                {"trial": trial, "condition": cond, "metric": "hmi_latency_p95_ms",
                 "value": 2.0 + i + trial, "valid": cond != "fuzz" or trial == 1}]
    write_csv(tmp_path / "metrics.csv", metrics)
    tank = [{"trial": 1, "condition": cond, "t_rel_s": t / 10, "level_cm": lvl + t,
             "level_high_sp_cm": 160.0, "level_low_sp_cm": 40.0, "attack_end_rel_s": 5.0}
            for cond, lvl in (("baseline", 90.0), ("inject", 95.0)) for t in range(-20, 80)]
    write_csv(tmp_path / "tank.csv", tank)
    out = plot(tmp_path)
    stems = [stem for stem, _caption in out]
    assert stems == ["hmi_per_attack", "tank_inject_vs_baseline"]
    assert all(caption for _stem, caption in out)
    for stem in stems:
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        assert (tmp_path / f"{stem}.svg").exists()


def test_plots_without_data_draw_nothing(tmp_path: Path) -> None:
    assert plot(tmp_path) == []
