"""``recon_wall``: the default ``recon`` run in-process, its wall time broken down by stage.

The nested run writes its own bundle in this trial's raw folder; the stages are build,
controller connect, scans, teardown, the rest of the trial and plotting + report, plus the
``make run`` setup check (dpkg-query of the Makefile's packages + ``ovs-vsctl show``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from common.errors import LabError
from experiments import recon
from experiments.bench.shared import read_or_empty
from experiments.runner import TrialContext, run_experiment
from experiments.spec import TrialResult, resolve_config
from reporting.bundle import read_csv

REPO = Path(__file__).resolve().parents[2]


def setup_check_s() -> float:
    """What ``make run`` does before recon when everything is installed: dpkg-query of the
    Makefile's packages, then ``ovs-vsctl show`` (seconds)."""
    text = read_or_empty(REPO / "Makefile")
    m = re.search(r"^APT_PACKAGES := (.*?)(?<!\\)$", text, re.M | re.S)
    pkgs = m.group(1).replace("\\\n", " ").split() if m else []
    t0 = time.monotonic()
    for p in pkgs:
        subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                       timeout=30, check=False)
    subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, timeout=10,
                   check=False)
    return time.monotonic() - t0


def part_recon_wall(ctx: TrialContext) -> TrialResult:
    """Seconds per stage of the default recon, summed over its trials and defenses."""
    rcfg = resolve_config(recon.EXPERIMENT, None, {
        "trials": ctx.config["recon_trials"], "seed": ctx.seed,
        "engine": ctx.engine, "datapath": ctx.datapath})
    ctx.stage(f"default recon, {rcfg['trials']} trial(s), in-process")
    setup_s = setup_check_s()
    t0 = time.monotonic()
    outcome = run_experiment(recon.EXPERIMENT, rcfg, ctx.raw_dir / "recon",
                             ["bench", "recon_wall"])
    wall_s = time.monotonic() - t0
    if outcome.failed:
        raise LabError(f"recon: {outcome.failed} run(s) failed: "
                       f"{outcome.summary['failures'][:1]}")
    manifest = json.loads((outcome.bundle / "manifest.json").read_text())
    scans: dict[tuple[str, str], float] = defaultdict(float)
    for r in read_csv(outcome.bundle / "metrics.csv"):
        if r["metric"] in ("discovery_s", "port_scan_s") and r["value"]:
            scans[(r["trial"], r.get("condition", ""))] += float(r["value"])
    stages: dict[str, float] = defaultdict(float)
    for t in manifest["trials"]:
        tl = t.get("timeline", {})
        scan = scans.get((str(t["trial"]), t.get("condition", "")), 0.0)
        known = tl.get("build_s", 0.0) + tl.get("connect_s", 0.0) + tl.get("teardown_s", 0.0)
        stages["build"] += tl.get("build_s", 0.0)
        stages["connect"] += tl.get("connect_s", 0.0)
        stages["scans"] += scan
        stages["teardown"] += tl.get("teardown_s", 0.0)
        stages["rest_of_trial"] += max(0.0, t["duration_s"] - known - scan)
    stages["plots_report_setup"] = max(0.0, wall_s - sum(stages.values()))
    rows = [{"stage": k, "duration_s": v} for k, v in stages.items()]
    rows.append({"stage": "make_setup_check", "duration_s": setup_s})
    metrics = {f"{k}_s": v for k, v in stages.items()}
    metrics.update(recon_wall_s=wall_s, make_setup_check_s=setup_s,
                   make_run_s=wall_s + setup_s, recon_runs=float(len(manifest["trials"])))
    return TrialResult(tables={"recon_wall": rows}, metrics=metrics)
