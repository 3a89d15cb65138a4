"""``trial_stages``: the fixed cost of one ``recon`` trial, stage by stage.

``recon --defense none --exploit-gap-s 0`` trials run in-process, ``--stage-trials`` of them
on a fresh lab each (``cold``) and as many more on one kept lab (``warm``, :mod:`lab.warm`,
what ``experiments.run`` does by default for these trials; the warm series' first trial
builds that lab and is recorded as ``warm_build``, outside both medians). Each stage the trial
announces (``ctx.stage``) is timed by a recording progress, and the lab's own timeline splits
its first and last stages: controller start + build, switches' connection, PLC/HMI start,
scans, exploit, the rest (RTT ping, validity check, HMI figures), teardown (on a kept lab: the
host reset). One row per trial and stage; medians per stage and lab are the metrics
(``stage_<name>_median_s`` cold, ``warm_stage_<name>_median_s`` warm).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from common.plan import ics_plan
from experiments import recon
from experiments.progress import QuietProgress
from experiments.runner import TrialContext
from experiments.spec import TrialResult, resolve_config
from lab.warm import WarmLabs

# The recon trial's stage announcements (their first word) and the table's stage names.
STAGE_NAMES = {"building": "build_connect", "starting": "plc_hmi_start",
               "random": "attack_phase", "reconnaissance": "scans", "RTT": "rtt_ping",
               "waiting": "exploit_gap", "exploit:": "exploit", "validity": "validity_check"}


class StageClock(QuietProgress):
    """A progress that records when each stage began (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[str, float]] = []

    def stage(self, text: str) -> None:
        self.marks.append((text, time.monotonic()))


def stage_durations(marks: list[tuple[str, float]], end: float,
                    timeline: dict[str, float]) -> dict[str, float]:
    """Seconds per stage from stage marks and the trial's end; the lab timeline splits the
    build stage (build, connect) and takes teardown out of the last stage."""
    out: dict[str, float] = {}
    for i, (text, t) in enumerate(marks):
        nxt = marks[i + 1][1] if i + 1 < len(marks) else end
        name = STAGE_NAMES.get(text.split(" ", 1)[0], "other")
        out[name] = out.get(name, 0.0) + (nxt - t)
    teardown = timeline.get("teardown_s", 0.0)
    if marks:
        last = STAGE_NAMES.get(marks[-1][0].split(" ", 1)[0], "other")
        out[last] = max(0.0, out[last] - teardown)
    out["teardown"] = teardown
    if "build_connect" in out and "build_s" in timeline:
        out["build"] = timeline["build_s"]
        out["connect"] = timeline.get("connect_s", 0.0)
        out["plc_hmi_start"] = out.get("plc_hmi_start", 0.0) + max(
            0.0, out.pop("build_connect") - out["build"] - out["connect"])
    return out


def _timed_trial(ctx: TrialContext, rcfg: dict[str, Any], rep: int, name: str,
                 labs: WarmLabs | None) -> tuple[float, dict[str, float]]:
    """One recon trial (none, gap 0): its wall seconds and seconds per stage."""
    raw = ctx.raw_dir / name
    raw.mkdir(exist_ok=True)
    clock = StageClock()
    rctx = TrialContext(exp=recon.EXPERIMENT, config=rcfg, trial=rep, seed=ctx.seed + rep,
                        raw_dir=raw, plan=ics_plan(), engine=ctx.engine,
                        datapath=ctx.datapath, progress=clock, condition="none", labs=labs)
    t0 = time.monotonic()
    res = recon.trial(rctx)
    end = time.monotonic()
    return end - t0, stage_durations(clock.marks, end, res.timeline)


def part_trial_stages(ctx: TrialContext) -> TrialResult:
    """Per-stage seconds of ``recon --defense none --exploit-gap-s 0`` on the ICS plan, on a
    fresh lab per trial and on one kept lab."""
    rcfg = resolve_config(recon.EXPERIMENT, None, {"exploit_gap_s": 0.0, "seed": ctx.seed})
    n = ctx.config["stage_trials"]
    rows: list[dict[str, Any]] = []
    walls: dict[str, list[float]] = {"cold": [], "warm": []}
    stages: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}

    def record(lab: str, rep: int, wall_s: float, per_stage: dict[str, float]) -> None:
        rows.extend({"lab": lab, "trial": rep, "stage": st, "duration_s": secs}
                    for st, secs in per_stage.items())
        rows.append({"lab": lab, "trial": rep, "stage": "total", "duration_s": wall_s})
        if lab in walls:
            walls[lab].append(wall_s)
            stages[lab].append(per_stage)

    for rep in range(1, n + 1):
        ctx.stage(f"trial stages: recon none, gap 0, fresh lab (trial {rep} of {n})")
        record("cold", rep, *_timed_trial(ctx, rcfg, rep, f"recon_{rep}", None))
    labs = WarmLabs(ctx.raw_dir / "warm_labs")
    try:
        for rep in range(0, n + 1):
            ctx.stage(f"trial stages: recon none, gap 0, kept lab (trial {rep} of {n})")
            wall_s, per_stage = _timed_trial(ctx, rcfg, rep, f"recon_warm_{rep}", labs)
            record("warm" if rep else "warm_build", rep, wall_s, per_stage)
    finally:
        labs.close()
    metrics: dict[str, float] = {}
    for lab, prefix in (("cold", ""), ("warm", "warm_")):
        metrics[f"{prefix}trial_wall_median_s"] = statistics.median(walls[lab])
        metrics[f"{prefix}trial_wall_max_s"] = max(walls[lab])
        for stage in sorted({st for per in stages[lab] for st in per}):
            vals = [per[stage] for per in stages[lab] if stage in per]
            metrics[f"{prefix}stage_{stage}_median_s"] = (statistics.median(vals) if vals
                                                          else math.nan)
    return TrialResult(tables={"trial_stages": rows}, metrics=metrics)
