"""Intervals that fit the metric, paired tests, and summary.json nested by condition (no root).

Reference values: Wilson and Clopper-Pearson from the closed forms (k = n: lower bound
(alpha/2)^(1/n)) and R's ``binom.test``/``prop.test(correct=FALSE)``; McNemar exact from the
binomial tail; t p-values from R's ``pt``.
"""

from __future__ import annotations

import math

import pytest

from experiments.runner import condition_order, summary_table
from experiments.scoring import score_hosts
from reporting.stats import (
    Proportion,
    clopper_pearson_interval,
    format_estimate,
    mcnemar_exact_p,
    paired_test,
    summarize_metric,
    t_two_sided_p,
    wilson_interval,
)
from reporting.summary import ConditionTrials, build_summary, metric, metric_entries


def test_wilson_known_values() -> None:
    assert wilson_interval(3, 3) == pytest.approx((0.4385, 1.0), abs=1e-4)
    assert wilson_interval(4, 4)[1] == 1.0 and wilson_interval(0, 4)[0] == 0.0
    assert wilson_interval(0, 3) == pytest.approx((0.0, 0.5615), abs=1e-4)
    assert wilson_interval(1, 4) == pytest.approx((0.0456, 0.6994), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_clopper_pearson_known_values() -> None:
    assert clopper_pearson_interval(3, 3) == pytest.approx((0.2924, 1.0), abs=1e-4)
    assert clopper_pearson_interval(0, 3) == pytest.approx((0.0, 0.7076), abs=1e-4)
    assert clopper_pearson_interval(1, 4) == pytest.approx((0.0063, 0.8059), abs=1e-4)
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)


def test_mcnemar_and_t_p_values() -> None:
    assert mcnemar_exact_p(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact_p(1, 6) == pytest.approx(0.125)
    assert mcnemar_exact_p(3, 3) == 1.0 and mcnemar_exact_p(0, 0) == 1.0
    assert t_two_sided_p(2.5706, 5) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.07339, abs=1e-4)


def test_three_of_three_prints_an_interval_never_plus_minus_zero() -> None:
    s = summarize_metric([Proportion(1, 1)] * 3).to_dict()
    assert (s["kind"], s["k"], s["n"], s["method"]) == ("proportion", 3, 3, "wilson")
    assert format_estimate(s) == "1.00 [0.44, 1.00] 3/3"
    cp = summarize_metric([Proportion(1, 1)] * 3, "clopper-pearson").to_dict()
    assert format_estimate(cp) == "1.00 [0.29, 1.00] 3/3"
    # A constant continuous metric has no interval rather than "± 0"; nor has n = 1.
    assert format_estimate(summarize_metric([4.0, 4.0, 4.0]).to_dict()) == \
        "4 (all 3 values equal: no interval)"
    one = summarize_metric([2.5]).to_dict()
    assert format_estimate(one) == "2.5 (n=1: no interval)" and one["ci_low"] is None


def test_proportions_pool_counts_over_trials() -> None:
    s = summarize_metric([Proportion(3, 5), Proportion(1, 1), math.nan]).to_dict()
    assert (s["k"], s["n"], s["trials"]) == (4, 6, 2)
    assert s["mean"] == pytest.approx(4 / 6)  # pooled, not the mean of 0.6 and 1.0
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_interval(4, 6))
    mixed = summarize_metric([Proportion(1, 2), 0.25, 0.75]).to_dict()
    assert mixed["kind"] == "continuous" and mixed["method"] == "t"
    # Host precision from the scorer is a proportion: 2 right of 3 reported.
    p = score_hosts({"plc1", "plc2", "ghost"}, {"plc1", "plc2", "hmi"}).precision
    assert isinstance(p, Proportion) and (p.k, p.n) == (2, 3) and p == pytest.approx(2 / 3)
    assert math.isnan(Proportion(0, 0))
    with pytest.raises(ValueError):
        Proportion(4, 3)


def test_paired_tests() -> None:
    one, zero = Proportion(1, 1), Proportion(0, 1)
    mc = paired_test("success", "none", "rhm", [(one, zero)] * 5 + [(one, one)])
    assert (mc.method, mc.a_only, mc.b_only, mc.n_pairs) == ("mcnemar-exact", 5, 0, 6)
    assert mc.p_value == pytest.approx(0.0625) and mc.mean_diff == pytest.approx(-5 / 6)
    pt = paired_test("rtt_ms", "none", "rhm", [(1.0, 2.0), (2.0, 2.5), (3.0, 5.0)])
    assert pt.method == "paired-t" and pt.mean_diff == pytest.approx(7 / 6)
    assert pt.p_value == pytest.approx(0.1181, abs=1e-3)
    assert pt.ci_low < pt.mean_diff < pt.ci_high
    flat = paired_test("x", "a", "b", [(1.0, 2.0), (2.0, 3.0)])
    assert flat.p_value is None and "equal" in flat.note


def test_summary_nested_by_condition_with_paired_and_premise_failed() -> None:
    trials = {"none": ConditionTrials.empty(), "rhm": ConditionTrials.empty()}
    for t in (1, 2, 3):
        trials["none"].add_scored(t, {"attacker_modbus_success": Proportion(2, 2),
                                      "discovery_s": 4.0 + t})
    trials["rhm"].add_scored(1, {"attacker_modbus_success": Proportion(0, 2),
                                 "discovery_s": 6.0})
    trials["rhm"].add_scored(2, {"attacker_modbus_success": Proportion(1, 2),
                                 "discovery_s": 6.5})
    trials["rhm"].add_premise_failed(["real_addresses_unreachable"])
    s = build_summary("recon", trials, [])
    assert list(s["conditions"]) == ["none", "rhm"]
    succ = s["conditions"]["rhm"]["attacker_modbus_success"]
    assert (succ["k"], succ["n"], succ["method"], succ["trials"]) == (1, 4, "wilson", 2)
    assert s["trials"]["rhm"] == {"scored": 2, "premise_failed": 1, "failed": 0,
                                  "failed_checks": {"real_addresses_unreachable": 1}}
    assert s["trials_premise_failed"] == 1 and s["trials_completed"] == 6
    paired = {p["metric"]: p for p in s["paired"]}
    assert paired["discovery_s"]["n_pairs"] == 2  # trial 3 of rhm was not scored
    assert paired["attacker_modbus_success"]["method"] == "paired-t"  # 2 PLCs per trial
    assert metric(s, "discovery_s", "none")["n"] == 3
    table = summary_table(s)
    assert "1.00 [0.61, 1.00]" in table and "6/6 (3 trials)" in table
    assert "rhm: premise failed in 1 trial(s) (real_addresses_unreachable 1x)" in table
    assert "rhm vs none" in table and "±" not in table


def test_legacy_flat_summary_is_read() -> None:
    old = {"metrics": {"none:host_recall": {"n": 3, "mean": 0.5, "ci95": 0.1},
                       "rtt_ms": {"n": 1, "mean": 2.0, "ci95": None}}}
    entries = metric_entries(old)
    assert [(e.condition, e.metric) for e in entries] == [("none", "host_recall"),
                                                         ("all", "rtt_ms")]
    assert entries[0].stats["ci_low"] == pytest.approx(0.4)
    assert format_estimate(entries[1].stats) == "2 (n=1: no interval)"


def test_condition_order_is_shuffled_per_trial_and_reproducible() -> None:
    conds = ["none", "rhm", "nat"]
    orders = [condition_order(conds, seed) for seed in range(20)]
    assert all(sorted(o) == sorted(conds) for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    assert orders == [condition_order(conds, seed) for seed in range(20)]


def test_a_bound_near_the_estimate_gets_more_decimals() -> None:
    lo, _ = wilson_interval(999, 999)
    text = format_estimate({"kind": "proportion", "mean": 1.0, "ci_low": lo, "ci_high": 1.0,
                            "k": 999, "n": 999})
    assert text == f"1.000 [{lo:.3f}, 1.000] 999/999" and lo < 0.9995
    assert format_estimate({"kind": "proportion", "mean": 1.0, "ci_low": 0.44,
                            "ci_high": 1.0, "k": 3, "n": 3}) == "1.00 [0.44, 1.00] 3/3"
