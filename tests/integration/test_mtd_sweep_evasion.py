"""``mtd-sweep --quick`` and ``evasion --quick`` end to end through the CLI: the bundle, its
plots, and values a user would check first."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reporting.summary import flat_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, timeout_s: float = 110) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def summary_metrics(bundle: Path) -> dict[str, dict]:
    return flat_metrics(json.loads((bundle / "summary.json").read_text()))


def test_mtd_sweep_quick(tmp_path: Path) -> None:
    # Seed 12 draws an attack phase of 2 % of the interval (0.66 s at 30 s; seed 1: 13 s of
    # waiting): the phase is not what this test checks (tests/unit: its distribution).
    res = run("experiments.run", "mtd-sweep", "--quick", "--seed", "12", "--out", str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    bundle = (tmp_path / "mtd-sweep" / "latest").resolve()
    for name in ("tradeoff.png", "tradeoff.svg", "controller_cpu.png", "hop_latency.png",
                 "controller_load.csv", "staleness.csv", "hmi.csv", "report.html"):
        assert (bundle / name).is_file(), name
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["conditions"] == ["hop1s", "hop30s"]
    assert all(t["status"] == "ok" for t in manifest["trials"]), manifest["trials"]
    m = summary_metrics(bundle)
    for cond in ("hop1s", "hop30s"):
        assert f"{cond}:attack_no_target" in m, cond  # the attack was run and scored

    def reached(cond: str) -> float:
        """Share of the PLCs the attacker reached; 0 when it found no target (success is
        then absent: nothing was attempted, so nothing was reached)."""
        key = f"{cond}:attacker_modbus_success"
        return float(m[key]["mean"]) if key in m else 0.0

    short, long_ = reached("hop1s"), reached("hop30s")
    print(f"mtd-sweep: PLCs reached 1 s {short}, 30 s {long_} (no target found "
          f"{m['hop1s:attack_no_target']['mean']} / {m['hop30s:attack_no_target']['mean']}); cpu "
          f"{m['hop1s:controller_cpu_pct']['mean']:.2f}% / "
          f"{m['hop30s:controller_cpu_pct']['mean']:.2f}%; hops "
          f"{m['hop1s:hops']['mean']:.0f}")
    assert short <= long_
    for cond in ("hop1s", "hop30s"):
        assert 0 <= m[f"{cond}:controller_cpu_pct"]["mean"] < 200  # 2 cores at most
        assert m[f"{cond}:hmi_availability"]["mean"] > 0.9
        assert 0 <= m[f"{cond}:findings_valid_at_exploit"]["mean"] <= 1
    assert m["hop1s:hops"]["mean"] > 2  # the 1 s interval really hopped during the run
    loads = list(csv.DictReader(open(bundle / "controller_load.csv")))
    assert {float(r["hop_interval_s"]) for r in loads} == {1.0, 30.0}


def test_evasion_quick(tmp_path: Path) -> None:
    res = run("experiments.run", "evasion", "--quick", "--out", str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    bundle = (tmp_path / "evasion" / "latest").resolve()
    for name in ("hosts_over_time.png", "hosts_over_time.svg", "time_to_block.png",
                 "evasion_probes.csv", "detections.csv", "attack_sources.csv", "hmi.csv"):
        assert (bundle / name).is_file(), name
    m = summary_metrics(bundle)
    print("evasion: " + ", ".join(
        f"{c} blocked after {m[f'{c}:time_to_block_s']['mean']:.2f} s, "
        f"{m[f'{c}:sources_used']['mean']:.0f} source(s), "
        f"{m[f'{c}:hosts_found']['mean']:.0f} host(s)" for c in ("fixed", "hopping")
        if f"{c}:time_to_block_s" in m))
    assert m["fixed:attacker_blocked"]["mean"] == 1.0
    assert 0 < m["fixed:time_to_block_s"]["mean"] < 8
    assert m["fixed:probes_answered_after_block"]["mean"] == 0
    assert m["fixed:sources_used"]["mean"] == 1
    assert m["hopping:sources_used"]["mean"] > 1
    assert m["fixed:hmi_availability"]["mean"] > 0.9
    manifest = json.loads((bundle / "manifest.json").read_text())
    captions = " ".join(p["caption"] for p in manifest["plots"])
    if m["hopping:attacker_blocked"]["mean"] == 1.0:  # what the MAC-keyed detector does
        assert "hopping attacker was blocked too" in captions
