"""Synthetic results bundles shaped like the runner's, for report and browser tests (no root)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from reporting import plotting
from reporting.stats import Proportion
from reporting.summary import NO_CONDITION, ConditionTrials, build_summary

HOSTILE = '<script>alert("x")</script>&<b>'


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """A bundle table as the runner writes it: a header from the first row's keys."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def draw_plot(bundle: Path, stem: str, color: str = "#4477aa") -> None:
    """A real PNG + SVG pair written by the project's plotting helpers."""
    fig, ax = plotting.figure()
    ax.bar(["a", "b", "c"], [3, 1, 2], color=color)
    ax.set_title(stem)
    plotting.save(fig, bundle, stem)


def make_bundle(root: Path, *, invalid: bool = False, failed: bool = False,
                fidelity: bool = False, hostile: bool = False) -> Path:
    """A small synthetic bundle shaped like the runner's: 3 trials, two plots.

    invalid: trial 2 fails the validity check. failed: trial 3 fails with an error (and an
    error.txt). fidelity: per-trial fidelity summaries, trial 1 saturated. hostile: HTML and
    URLs in strings that come from files.
    """
    b = root / "demo" / "20260101T000000Z"
    (b / "raw").mkdir(parents=True)
    text = HOSTILE if hostile else "plain"
    config = {"experiment": "demo", "trials": 3, "seed": 7, "note": text}
    trials: list[dict[str, Any]] = [
        {"trial": 1, "seed": 11, "status": "ok", "duration_s": 1.5,
         "timeline": {"build_s": 0.5, "teardown_s": 0.25}},
        {"trial": 2, "seed": 12, "status": "invalid" if invalid else "ok", "duration_s": 1.25,
         "timeline": {}},
    ]
    if failed:
        trials.append({"trial": 3, "seed": 13, "status": "failed",
                       "error": "LabError: PLC plc1 exited with 1" + (text if hostile else ""),
                       "duration_s": 0.5})
        (b / "raw" / "trial-003").mkdir()
        (b / "raw" / "trial-003" / "error.txt").write_text(
            "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
            "common.errors.LabError: PLC plc1 exited with 1 <deep-cause>\n")
    else:
        trials.append({"trial": 3, "seed": 13, "status": "ok", "duration_s": 1.0})
    if fidelity:
        for t in trials:
            sat = t["trial"] == 1
            t["fidelity"] = {"n_samples": 10, "interval_s": 0.2,
                             "mean_idle_share": 0.05 if sat else 0.8, "min_idle_share": 0.0,
                             "low_idle_sample_share": 0.9 if sat else 0.0,
                             "min_busiest_core_idle_share": 0.0, "low_idle_threshold": 0.1,
                             "saturated_share": 0.2, "saturated": sat}
    manifest = {
        "experiment": "demo",
        "command": ["python", "-m", "experiments.run", "demo", "--note", text],
        "git_commit": "0123abcd",
        "started_utc": "2026-01-01T00:00:00+00:00",
        "ended_utc": "2026-01-01T00:01:00+00:00",
        "seed": 7,
        "platform": {"kernel": "6.1.0-test", "ovs_version": "3.1.0", "datapath": "user",
                     "netem": False,
                     "nmap": "Nmap version 7.93 ( https://nmap.org )" + (text if hostile else ""),
                     "python": "3.11.2"},
        "controller": {"engine": "ryu", "version": "4.34"},
        "packages": {"ryu": "4.34", "pymodbus": "3.16.1"},
        "topology": "ics",
        "trials_requested": 3,
        "trials": trials,
        "validity": {"real_addresses_unreachable": not invalid},
        "interrupted": False,
        "complete": True,
        "plots": [
            {"stem": "alpha", "caption": "Alpha caption " + (text if hostile else "")},
            {"stem": "beta", "caption": "Beta caption, see http://example.org/beta"},
        ],
    }
    if fidelity:
        manifest["fidelity"] = {"monitored_trials": 3, "saturated_trials": [1],
                                "low_idle_threshold": 0.1, "saturated_share": 0.2}
    rtts = {1: 1.0, 2: 2.0, 3: 3.0}
    metrics_csv = ["trial,metric,value,valid"]
    for t in trials:
        if t["status"] == "failed":
            continue
        ok = t["status"] == "ok"
        metrics_csv.append(f"{t['trial']},rtt_avg_ms,{rtts[t['trial']]},{str(ok).lower()}")
    # summary.json as the runner builds it: rtt_avg_ms continuous, plc_reached a proportion.
    per = ConditionTrials.empty()
    for t in trials:
        if t["status"] == "ok":
            per.add_scored(t["trial"], {"rtt_avg_ms": rtts[t["trial"]],
                                        "plc_reached": Proportion(1, 1)})
            metrics_csv.append(f"{t['trial']},plc_reached,1.0,true")
        elif t["status"] == "invalid":
            per.add_premise_failed(["real_addresses_unreachable"])
        else:
            per.failed += 1
    summary = build_summary("demo", {NO_CONDITION: per},
                            [t["error"] for t in trials if t["status"] == "failed"])
    (b / "config.json").write_text(json.dumps(config))
    (b / "manifest.json").write_text(json.dumps(manifest))
    (b / "summary.json").write_text(json.dumps(summary))
    (b / "metrics.csv").write_text("\n".join(metrics_csv) + "\n")
    draw_plot(b, "alpha")
    draw_plot(b, "beta", color="#cc3311")
    return b
