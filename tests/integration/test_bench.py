"""``bench --quick`` end to end: the bundle's structure and positive figures (no timing
targets: timings on a shared machine are noise, the doc reports them)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import bench
from reporting.summary import flat_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_bench_quick_bundle(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "experiments.bench", "--quick", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    bundle = (tmp_path / "bench" / "latest").resolve()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["complete"] and manifest["conditions"] == list(bench.PARTS)
    failed = [t for t in manifest["trials"] if t["status"] != "ok"]
    assert not failed, failed
    for name in ("bringup.csv", "recon_wall.csv", "hop_latency.csv", "rtt.csv",
                 "throughput.csv", "scale.csv", "controller_burst.csv", "metrics.csv",
                 "summary.json", "bringup.png", "recon_wall.svg", "hop_latency.png",
                 "rtt_overhead.png", "controller_burst.png", "report.html",
                 "trial_stages.csv", "memory.csv", "memory.png"):
        assert (bundle / name).is_file(), name
    m = {k: v["mean"] for k, v in
         flat_metrics(json.loads((bundle / "summary.json").read_text())).items()}
    for n in (10, 20):
        for key in (f"bringup:ours_s_n{n}", f"bringup:plain_s_n{n}", f"bringup:ratio_n{n}"):
            assert m[key] > 0, key
    for key in ("recon_wall:recon_wall_s", "recon_wall:scans_s", "recon_wall:make_run_s",
                "hopping:hop_p95_ms_p2", "hopping:hops_p2",
                "datapath:rtt_p50_ms_none", "datapath:rtt_p50_ms_rhm",
                "datapath:throughput_mbps_none", "datapath:throughput_mbps_rhm",
                "scale:star_wall_s", "scale:linear_wall_s",
                "controller:flows_per_s_ryu", "controller:flows_per_s_os-ken",
                "trial_stages:trial_wall_median_s", "trial_stages:stage_build_median_s",
                "trial_stages:stage_scans_median_s", "trial_stages:stage_teardown_median_s",
                "memory:shells_pss_mib_per_host"):
        assert m[key] > 0, key
    assert m["hopping:ctrl_cpu_pct_p2"] >= 0
    # the kept lab's trial built nothing; its scans cost what a fresh lab's do
    assert m["trial_stages:warm_trial_wall_median_s"] > 0
    assert m["trial_stages:warm_stage_build_median_s"] == 0
    assert m["trial_stages:warm_stage_scans_median_s"] > 0
    # machine-wide: other work on the machine moves it either way, so only its presence
    assert math.isfinite(m["memory:mem_available_drop_mib_n20"])
    assert m["scale:star_completed"] == 1 and m["scale:linear_completed"] == 1
    # the nested recon wrote its own complete bundle inside the raw folder
    nested = list((bundle / "raw").glob("trial-001/recon_wall/recon/recon/*/manifest.json"))
    assert nested and json.loads(nested[0].read_text())["complete"]
