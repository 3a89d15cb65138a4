"""``trial_stages``: the fixed cost of one ``recon`` trial, stage by stage.

``recon --defense none --exploit-gap-s 0`` trials run in-process (``--stage-trials`` of them);
each stage the trial announces (``ctx.stage``) is timed by a recording progress, and the lab's
own timeline splits its first and last stages: controller start + build, switches'
connection, PLC/HMI start, scans, exploit, the rest (RTT ping, validity check, HMI figures),
teardown. One row per trial and stage; medians per stage are the metrics.
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


def part_trial_stages(ctx: TrialContext) -> TrialResult:
    """Per-stage seconds of ``recon --defense none --exploit-gap-s 0`` on the ICS plan."""
    rcfg = resolve_config(recon.EXPERIMENT, None, {"exploit_gap_s": 0.0, "seed": ctx.seed})
    rows: list[dict[str, Any]] = []
    walls: list[float] = []
    for rep in range(1, ctx.config["stage_trials"] + 1):
        ctx.stage(f"trial stages: recon none, gap 0 (trial {rep})")
        raw = ctx.raw_dir / f"recon_{rep}"
        raw.mkdir(exist_ok=True)
        clock = StageClock()
        rctx = TrialContext(exp=recon.EXPERIMENT, config=rcfg, trial=rep, seed=ctx.seed + rep,
                            raw_dir=raw, plan=ics_plan(), engine=ctx.engine,
                            datapath=ctx.datapath, progress=clock, condition="none")
        t0 = time.monotonic()
        res = recon.trial(rctx)
        end = time.monotonic()
        walls.append(end - t0)
        for stage, secs in stage_durations(clock.marks, end, res.timeline).items():
            rows.append({"trial": rep, "stage": stage, "duration_s": secs})
        rows.append({"trial": rep, "stage": "total", "duration_s": end - t0})
    metrics: dict[str, float] = {"trial_wall_median_s": statistics.median(walls),
                                 "trial_wall_max_s": max(walls)}
    for stage in sorted({r["stage"] for r in rows} - {"total"}):
        vals = [r["duration_s"] for r in rows if r["stage"] == stage]
        metrics[f"stage_{stage}_median_s"] = statistics.median(vals) if vals else math.nan
    return TrialResult(tables={"trial_stages": rows}, metrics=metrics)
