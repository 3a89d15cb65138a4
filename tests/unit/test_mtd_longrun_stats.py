"""mtd-longrun over its trials (experiments/mtd_longrun_stats.py): each run's values from the
bundle's rows, the per-condition summaries with premise-failed runs counted and left out of the
estimates, the paired comparisons on the trials' seeds, the sampling model, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from experiments import mtd_longrun_stats as ms
from reporting.stats import Proportion
from tests.support.bundles import write_csv


def attempt(trial: int, cond: str, t_s: float, plc: str = "") -> dict[str, str]:
    return {"trial": str(trial), "condition": cond, "t_s": str(t_s), "reached_plc": plc}


def test_first_reaches_are_each_plcs_earliest_within_the_window() -> None:
    rows = [attempt(1, "c", 5.0, "plc2"), attempt(1, "c", 3.0, "plc2"),
            attempt(1, "c", 4.0), attempt(1, "c", 9.0, "plc1"), attempt(1, "c", 700.0, "plc1"),
            attempt(2, "c", 800.0, "plc1"), attempt(1, "d", 1.5, "plc1")]
    got = ms.first_reaches(rows, window_s=600.0)
    assert got[(1, "c")] == (3.0, 9.0)
    assert got[(1, "d")] == (1.5,)
    assert (2, "c") not in got  # reached only after the window


def test_hmi_counts_add_the_plcs() -> None:
    rows = [{"trial": "1", "condition": "c", "polls": "10", "polls_ok": "9"},
            {"trial": "1", "condition": "c", "polls": "10", "polls_ok": "10"}]
    assert ms.hmi_counts(rows) == {(1, "c"): (19, 20)}


def test_round_starts_are_from_the_attacks_start() -> None:
    outcome = {"attack_start_unix_s": 100.0,
               "rounds": [{"started_unix_s": 100.0}, {"started_unix_s": 105.5}]}
    assert ms.round_starts(outcome) == (0.0, 5.5)
    assert ms.round_starts({"rounds": [{"started_unix_s": 1.0}]}) == ()


def run(trial: int, cond: str, reach: tuple[float, ...], status: str = "ok",
        **kw: Any) -> ms.Run:
    return ms.Run(trial=trial, condition=cond, status=status, reach_s=reach, plcs_total=2,
                  hmi_polls=100, hmi_ok=100, round_starts_s=(0.0, 5.0, 10.0, 15.0), **kw)


def test_a_runs_values_rounds_and_proportions() -> None:
    r = run(1, "pool16_hop1s", (7.0, 12.5), metrics={"controller_cpu_pct": 11.0})
    v = r.values()
    assert (v["first_reach_s"], v["second_reach_s"]) == (7.0, 12.5)
    assert (r.reach_round(1), r.reach_round(2)) == (2, 3)
    assert v["rounds"] == 4 and v["round_s"] == 5.0
    assert isinstance(v["plcs_reached"], Proportion) and v["plcs_reached"].k == 2
    assert v["controller_cpu_pct"] == 11.0 and math.isnan(v["flow_table_flows"])
    one = run(1, "pool16_hop1s", (7.0,))
    assert math.isnan(one.values()["second_reach_s"]) and one.reach_round(2) is None
    assert one.values()["plcs_reached"].k == 1


def test_summary_is_over_the_scored_runs_and_shows_the_others() -> None:
    runs = [run(1, "pool16_hop1s", (10.0, 20.0)), run(2, "pool16_hop1s", (12.0, 30.0)),
            run(3, "pool16_hop1s", (1.0, 2.0), status="invalid",
                invalid_checks=("real_addresses_unreachable",))]
    s = ms.condition_summary(runs)
    assert s["second_reach_s"].n == 2 and s["second_reach_s"].mean == 25.0
    assert s["second_reach_s"].ci_low is not None and s["second_reach_s"].method == "t"
    assert (s["plcs_reached"].k, s["plcs_reached"].n) == (4, 4)
    assert s["plcs_reached"].method == "wilson"
    assert ms._runs_cell(runs) == "2/3 (trial 3: invalid real_addresses_unreachable)"
    table = ms.condition_table(runs)
    assert "4/4 [0.51, 1.00]" in table and "± 0" not in table
    short = [*runs, run(4, "pool16_hop1s", (15.0,))]  # the 2nd PLC not reached in trial 4
    table = ms.condition_table(short)
    assert "25.0 [" in table and "range 20.0 to 30.0, n=2 |" in table
    assert "5/6 [" in ms.condition_table(short)


def test_equal_values_print_no_zero_width_interval() -> None:
    runs = [run(t, "pool8_hop1s", (0.3, 0.3)) for t in (1, 2, 3)]
    cell = ms.fmt(ms.condition_summary(runs)["first_reach_s"])
    assert cell == "0.3 (all 3 values equal: no interval)"
    close = [run(t, "pool8_hop1s", (x, x)) for t, x in ((1, 0.31), (2, 0.32), (3, 0.33))]
    cell = ms.fmt(ms.condition_summary(close)["first_reach_s"], spread=True)
    assert cell == "0.32 [0.30, 0.34] range 0.31 to 0.33"  # not 0.3 [0.3, 0.3]
    test = ms.compare([*runs, *(run(r.trial, "b", (0.301 + r.trial / 1000, 1.0))
                                for r in runs)], "pool8_hop1s", "b", "first_reach_s")
    assert ms._paired_cell(test).startswith("+0.003 [")
    assert ms._decimals(-0.02, -0.06, 0.03, 1) == 2  # -0.0 and 0.0 print alike


def test_paired_comparison_by_trial_leaves_out_unreached_and_unscored() -> None:
    a, b = "pool16_hop5s", "pool16_hop5s_decoys8"
    runs = [run(1, a, (5.0, 30.0)), run(1, b, (5.0, 40.0)),
            run(2, a, (5.0, 50.0)), run(2, b, (5.0, 62.0)),
            run(3, a, (5.0, 20.0)), run(3, b, (5.0, 28.0)),
            run(4, a, (5.0,)), run(4, b, (5.0, 90.0)),          # a never reached the 2nd
            run(5, a, (5.0, 1.0), status="invalid"), run(5, b, (5.0, 9.0))]
    test = ms.compare(runs, a, b, "second_reach_s")
    assert test.n_pairs == 3 and test.method == "paired-t"
    assert test.mean_diff == pytest.approx(10.0)
    assert test.ci_low is not None and test.ci_low < 10.0 < test.ci_high
    assert test.p_value is not None and 0 < test.p_value < 0.05
    assert ms._paired_cell(test).startswith("+10.0 [")


def test_pairs_named_from_the_grid() -> None:
    names = ["pool8_hop1s", "pool8_hop1s_decoys8", "pool16_hop1s", "pool16_hop30s",
             "pool16_hop1s_decoys8", "pool16_hop30s_decoys8", "pool16_hop5s"]
    assert ms.decoy_pairs(names) == [("pool8_hop1s", "pool8_hop1s_decoys8"),
                                     ("pool16_hop1s", "pool16_hop1s_decoys8"),
                                     ("pool16_hop30s", "pool16_hop30s_decoys8")]
    assert ms.interval_pairs(names, 16) == [
        ("pool16_hop1s", "pool16_hop5s"), ("pool16_hop1s", "pool16_hop30s"),
        ("pool16_hop1s_decoys8", "pool16_hop30s_decoys8")]


def test_sampling_model_against_the_closed_forms() -> None:
    m = ms.SamplingModel(4096, 65536)  # p = 1/16 exactly
    q = 15 / 16
    first = 1 / (1 - q * q)
    assert m.mean_rounds(1) == pytest.approx(first, rel=1e-9)  # ≈ 8.26
    assert m.mean_rounds(2) == pytest.approx(2 * 16 - first, rel=1e-9)  # ≈ 23.7
    assert m.cdf(2, 10) == pytest.approx((1 - q**10) ** 2)
    assert m.cdf(1, 0) == 0.0
    assert sum(m.pmf(2)) == pytest.approx(1.0, abs=1e-9)
    # The mean of 1 draw: the distribution's own 2.5 % and 97.5 % quantiles.
    lo, hi = m.mean_range(1, 1)
    assert m.cdf(1, int(lo)) >= 0.025 > m.cdf(1, int(lo) - 1)
    assert m.cdf(1, int(hi)) >= 0.975 > m.cdf(1, int(hi) - 1)
    # The mean of more draws is narrower and still covers the expectation.
    lo5, hi5 = m.mean_range(2, 5)
    assert lo5 < m.mean_rounds(2) < hi5 and hi5 - lo5 < m.mean_range(2, 1)[1]
    whole = ms.SamplingModel(254, 254)  # the whole pool every round: round 1
    assert whole.mean_rounds(2) == 1.0 and whole.mean_range(2, 5) == (1.0, 1.0)


def make_bundle(root: Path) -> Path:
    """Two trials of two 2^16 conditions; trial 2 of the decoy condition failed its premise."""
    b = root / "b"
    conds = ["pool16_hop1s", "pool16_hop1s_decoys8"]
    trials = [{"trial": t, "seed": t, "condition": c,
               "status": "invalid" if (t, c) == (2, conds[1]) else "ok",
               **({"invalid_checks": ["real_addresses_unreachable"]}
                  if (t, c) == (2, conds[1]) else {}),
               "fidelity": {"saturated": t == 1, "mean_idle_share": 0.5}}
              for t in (1, 2) for c in conds]
    b.mkdir()
    (b / "manifest.json").write_text(json.dumps({"experiment": "mtd-longrun",
                                                 "trials": trials}))
    attempts, outcomes, hmi, metrics = [], [], [], []
    for t in (1, 2):
        for i, c in enumerate(conds):
            attempts += [attempt(t, c, 6.0 + t + i, "plc1"), attempt(t, c, 21.0 + t, "plc2")]
            outcomes.append({"trial": t, "condition": c, "tactic": "all", "plcs_total": 2})
            hmi.append({"trial": t, "condition": c, "plc": "plc1", "polls": 50,
                        "polls_ok": 50})
            metrics.append({"trial": t, "condition": c, "metric": "window_end_s",
                            "value": 600, "valid": True})
            raw = b / "raw" / f"trial-{t:03d}" / c
            raw.mkdir(parents=True)
            (raw / "attack_persistent.json").write_text(json.dumps({
                "attack_start_unix_s": 1000.0, "targets": ["x"] * 65534,
                "rounds": [{"started_unix_s": 1000.0 + 5 * k, "swept": 4096}
                           for k in range(6)]}))
    write_csv(b / "attack_attempts.csv", attempts)
    write_csv(b / "attack_outcomes.csv", outcomes)
    write_csv(b / "hmi.csv", hmi)
    write_csv(b / "metrics.csv", metrics)
    return b


def test_load_runs_and_report_from_a_bundle(tmp_path: Path) -> None:
    b = make_bundle(tmp_path)
    runs = ms.load_runs(b)
    assert len(runs) == 4
    r = next(x for x in runs if x.trial == 2 and x.condition == "pool16_hop1s")
    assert r.reach_s == (8.0, 23.0) and r.reach_round(2) == 5
    assert (r.swept, r.in_scope, r.saturated) == (4096, 65534, False)
    text = ms.report(b)
    assert "| 2^16, 1 s, 8 decoys | 1/2 (trial 2: invalid real_addresses_unreachable) |" in text
    assert "1/2, 0.50-0.50" in text  # one trial saturated, per condition
    assert "4096/65534 = 0.0625" in text
    assert "n = 1" in text  # the decoy comparison: one pair left


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert ms.main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "manifest.json").write_text(json.dumps({"experiment": "recon"}))
    assert ms.main([str(tmp_path)]) == 2
    assert "not mtd-longrun" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    b = make_bundle(tmp_path / "x")
    assert ms.main([str(b)]) == 0
    assert "## Per condition" in capsys.readouterr().out
