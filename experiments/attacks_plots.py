"""Figures of the ``attacks`` experiment, from a bundle's CSVs only (no root, no network):
the HMI during each attack's window, and the tank under command injection.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from experiments.attacks_scoring import CONDITIONS
from experiments.figures import finish
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import summarize


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Every figure of an ``attacks`` bundle: (file name, caption) each."""
    return plot_hmi_bars(bundle) + plot_tank(bundle)


def _metric_values(bundle: Path) -> dict[str, dict[str, list[float]]]:
    """condition → metric → values of valid trials."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    path = bundle / "metrics.csv"
    if not path.exists():
        return {}
    for r in read_csv(path):
        if r.get("valid") in ("false", "False") or not r["value"]:
            continue
        out[r.get("condition") or "baseline"][r["metric"]].append(float(r["value"]))
    return out


def plot_hmi_bars(bundle: Path) -> list[tuple[str, str]]:
    values = _metric_values(bundle)
    conds = [c for c in CONDITIONS if c in values] + sorted(set(values) - set(CONDITIONS))
    if not conds:
        return []
    import matplotlib.pyplot as plt

    with plt.rc_context(plotting.STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, metric, label in ((axes[0], "hmi_availability", "HMI availability (share)"),
                              (axes[1], "hmi_latency_p95_ms", "HMI latency p95 (ms)")):
        sums = [summarize(values[c].get(metric, [])) for c in conds]
        means = [0.0 if math.isnan(s.mean) else s.mean for s in sums]
        errs = [0.0 if math.isnan(s.ci95) else s.ci95 for s in sums]
        ax.bar(conds, means, yerr=errs, capsize=4,
               color=[plotting.color(c) for c in conds])
        for i, s in enumerate(sums):
            if s.n == 0:
                ax.annotate("n/a", (i, 0), ha="center", va="bottom", fontsize=7)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelsize=8)
        if metric == "hmi_availability":
            ax.set_ylim(0, 1.1)
    fig.suptitle("HMI during the attack window on the target PLC (mean ± 95% CI)",
                 fontsize=10)
    return [finish(fig, bundle, "hmi_per_attack", "HMI availability (share of polls of the "
                   "target PLC answered in time) and latency p95 during each attack's window, "
                   "next to the no-attack baseline over the same window length; mean over "
                   "valid trials, 95% CI error bars.")]


def plot_tank(bundle: Path) -> list[tuple[str, str]]:
    path = bundle / "tank.csv"
    if not path.exists():
        return []
    rows = read_csv(path)
    first = min((int(r["trial"]) for r in rows), default=None)
    series: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if int(r["trial"]) == first and r.get("condition") in ("baseline", "inject"):
            series[r["condition"]].append(r)
    if not series:
        return []
    fig, ax = plotting.figure()
    for cond in ("baseline", "inject"):
        pts = series.get(cond)
        if not pts:
            continue
        xs = [float(r["t_rel_s"]) for r in pts]
        ax.plot(xs, [float(r["level_cm"]) for r in pts], label=f"{cond}: level",
                color=plotting.color(cond))
    # The band as it stood before the attack, across the longer series (the injection
    # writes no setpoint, so both series share it).
    longest = max(series.values(), key=len)
    xs = [float(r["t_rel_s"]) for r in longest]
    ax.plot(xs, [float(longest[0]["level_high_sp_cm"])] * len(xs), linestyle="--",
            color="black", linewidth=1, label="high setpoint")
    ax.plot(xs, [float(longest[0]["level_low_sp_cm"])] * len(xs), linestyle=":",
            color="black", linewidth=1, label="low setpoint")
    end = next((float(r["attack_end_rel_s"]) for r in series.get("inject", [])), None)
    if end is not None:
        ax.axvspan(0.0, end, color="red", alpha=0.08, label="injection held")
    ax.axvline(0.0, color="red", linewidth=0.8)
    return [finish(fig, bundle, "tank_inject_vs_baseline", "Ground-truth tank level logged by "
                   "PLC 1 in the first trial, without attack and under Modbus command "
                   "injection (pump forced on, valve closed, auto mode off from t = 0; shaded "
                   "while the writes were held), with the high and low setpoints of the band.",
                   ax, xlabel="time from the attack's start (s, PLC clock)",
                   ylabel="tank level (cm)",
                   title=f"Tank level, baseline vs. command injection (trial {first}, "
                   "ground truth)", legend={"fontsize": 7, "loc": "upper left"})]
