"""``mtd-timing``: the staged attacker's success against the recon-to-exploit gap and the hop
interval, measured next to the analytic expectation for a uniformly phased attacker.

Conditions are hop intervals (``hop0.5s``...). Each trial builds one network per interval
(controller with the defense, PLCs, HMI) and runs ``--episodes`` staged attacks in it
(:mod:`attacks.attacker_timed`): each episode starts at a uniformly random phase of the target
PLC's hop schedule (phases drawn from the trial seed; episodes are taken in phase order so the
attacker does not idle a whole interval between them), scans 502/tcp with nmap (each open port
timed at its SYN-ACK), then sends one Modbus read at the end of the scan plus each gap of
``--gaps-s``. What the episodes of one trial share: the network build, the controller and its
hop schedule, the PLCs and the HMI; the gaps of one episode share its scan. The manifest's
trial records say so (``shared_*`` keys in each trial's timeline).

Scoring, per (episode, gap): the target is the plan's first Modbus PLC. ``target found``: the
scan saw 502 open at an address the target held when it answered (hop log); the exploit
``reached`` when the target's own request log shows that read answered. A cell's success is
reached / found (Wilson interval, k/n); "no target found" episodes are counted apart.

Model: with the target's answer at a uniformly random phase of a fixed interval I, and the
exploit Δ seconds after that answer, the address is still the target's when no hop falls in
between: P = max(0, 1 - Δ / I), Δ = (scan end - answer) + gap + connect delay, measured per
attempt (the model curve is the mean of P over a cell's attempts).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from attacks.attacker_timed import parse_gaps
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import AddressPlan
from experiments import defended, mtd
from experiments import mtd_sweep as sweep
from experiments import recon_attackers as ra
from experiments.figures import finish
from experiments.runner import TrialContext
from experiments.scoring import AttackAttempt, matching_records
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import plc_specs
from lab.hostrun import run_in_host
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import Proportion, wilson_interval

SHARED = ("network_build", "controller_and_hop_schedule", "plcs_and_hmi")
EPISODE_SPACING_S = 3.5  # an nmap SYN scan of the /24 takes about 2-3 s here


def parse_gaps_param(text: str) -> list[float]:
    try:
        return parse_gaps(text)
    except ValueError as exc:
        raise UserError(f"--gaps-s {text}: {exc}") from None


PARAMS = (
    Param("intervals_s", "str", "0.5,1,2,5,10,30", "hop intervals (one network build each "
          "per trial), comma-separated seconds", quick="2,20", parse=sweep.parse_intervals),
    Param("gaps_s", "str", "0,1,2,4,8", "recon-to-exploit gaps, seconds after the scan's end",
          quick="0,2", parse=parse_gaps_param),
    Param("episodes", "int", 10, "staged attacks per interval per trial (attempts per cell "
          "= episodes x trials)", 1, 1000, quick=4),
    Param("defense", "str", "rhm", "moving-target defense", choices=("rhm", "nat")),
    Param("flow_idle_s", "int", 10, "idle time after which a conversation's flows expire", 1,
          3600),
    defended.HOP_JITTER,
)


def conditions(cfg: dict[str, Any]) -> list[str]:
    return [sweep.condition_name(v) for v in sweep.parse_intervals(cfg["intervals_s"])]


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    if plan.attacker is None or not plan.protected:
        raise UserError(f"topology {plan.name} needs an attacker and a protected host")
    if not any(s.protocol == "modbus" for s in plc_specs(plan)):
        raise UserError(f"topology {plan.name} has no Modbus PLC")
    defended.check_jitter(cfg, sweep.parse_intervals(cfg["intervals_s"]), "--intervals-s")


# --- pure: schedule, model, scoring --------------------------------------------------------
def episode_starts(phases_s: list[float], interval_s: float, ref_unix_s: float,
                   first_unix_s: float, spacing_s: float) -> list[float]:
    """Start times realizing each phase (seconds after a hop at ``ref_unix_s``, every
    ``interval_s``), at least ``spacing_s`` apart from ``first_unix_s`` on: the next episode
    takes the remaining phase coming up soonest, so no episode waits a whole interval."""
    left = list(phases_s)
    cursor = first_unix_s
    out = []
    while left:
        now_phase = (cursor - ref_unix_s) % interval_s
        waits = [((p - now_phase) % interval_s, i) for i, p in enumerate(left)]
        wait, i = min(waits)
        left.pop(i)
        out.append(cursor + wait)
        cursor += wait + spacing_s
    return out


def model_success(delta_s: float, interval_s: float, jitter_s: float = 0.0) -> float:
    """P(no hop between answer and exploit) for an answer at a uniformly random time:
    max(0, 1 - Δ/I) on a fixed interval I.

    With jitter each interval L is uniform in [I - j, I + j]; an answer at a random time falls
    in an interval in proportion to its length, so P = E[max(0, L - Δ)] / I, which is
    1 - Δ/I up to Δ = I - j, (I + j - Δ)² / (4 j I) up to I + j, then 0.
    """
    delta = max(delta_s, 0.0)
    if jitter_s <= 0 or delta <= interval_s - jitter_s:
        return max(0.0, 1.0 - delta / interval_s)
    if delta >= interval_s + jitter_s:
        return 0.0
    return (interval_s + jitter_s - delta) ** 2 / (4.0 * jitter_s * interval_s)


def last_hop_before(hops: list[HopRecord], host: str, t_unix_s: float) -> float | None:
    times = [h.time_unix_s for h in hops if h.host == host and h.time_unix_s <= t_unix_s]
    return max(times) if times else None


def attempt_rows(outcome: dict[str, Any], records: list[Any], spans: list[mtd.AddressSpan],
                 hops: list[HopRecord], target: str, interval_s: float,
                 gaps_s: list[float], jitter_s: float = 0.0) -> list[dict[str, Any]]:
    """One row per (episode, gap): target found, Δ, the model's P (with the hop jitter),
    reached at the PLC."""
    by_key = {(int(a["episode"]), float(a["gap_s"]), a["address"]): a
              for a in outcome.get("attempts", [])}
    rows = []
    for ep in outcome.get("rounds", []):
        hit = [f for f in ep.get("found", []) if mtd.owner_at(
            spans, f["address"], float(f["reply_unix_s"])) == target]
        for gap in gaps_s:
            row: dict[str, Any] = {
                "hop_interval_s": interval_s, "gap_s": gap, "episode": ep["episode"],
                "scan_s": round(ep["scan_end_unix_s"] - ep["scan_start_unix_s"], 4),
                "target_found": bool(hit), "sent": False, "reached": False}
            if hit:
                f = hit[0]
                reply = float(f["reply_unix_s"])
                hop = last_hop_before(hops, target, reply)
                row["phase_s"] = round(reply - hop, 4) if hop is not None else None
                a = by_key.get((int(ep["episode"]), gap, f["address"]))
                if a is not None:
                    att = AttackAttempt.from_dict(a)
                    delta = att.started_unix_s - reply
                    row.update(delta_s=round(delta, 4), sent=att.sent,
                               model_p=round(model_success(delta, interval_s, jitter_s), 4),
                               reached=any(r.plc == target
                                           for r in matching_records(att, records)))
            rows.append(row)
    return rows


def cell_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per gap: success (reached of found, a Proportion), the model's mean P, no-target share."""
    out: dict[str, float] = {}
    by_gap: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_gap[float(r["gap_s"])].append(r)
    for gap, rs in sorted(by_gap.items()):
        found = [r for r in rs if r["target_found"] and r.get("model_p") is not None]
        key = f"gap{gap:g}s"
        out[f"{key}_success"] = Proportion(sum(bool(r["reached"]) for r in found), len(found))
        out[f"{key}_no_target"] = Proportion(len(rs) - len(found), len(rs))
        if found:
            out[f"{key}_model"] = sum(float(r["model_p"]) for r in found) / len(found)
            out[f"{key}_delta_s"] = sum(float(r["delta_s"]) for r in found) / len(found)
    scans = {(r["episode"], r["scan_s"]) for r in rows}
    if scans:
        out["scan_s"] = sum(s for _e, s in scans) / len(scans)
    return out


# --- the trial -----------------------------------------------------------------------------
def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    interval_s = sweep.interval_of(ctx.condition)
    gaps = parse_gaps_param(cfg["gaps_s"])
    plan = ctx.plan
    assert plan.attacker is not None
    target = next(s.host for s in plc_specs(plan) if s.protocol == "modbus")
    raw = ctx.raw_dir
    settings = defended.settings(ctx, cfg["defense"], interval_s)
    rng = random.Random(f"{ctx.seed}:{ctx.condition}:phases")
    phases = [rng.uniform(0.0, interval_s) for _ in range(cfg["episodes"])]
    with defended.defended_lab(ctx, settings, f"{cfg['defense']}, hop {interval_s:g} s") as run:
        lab = run.lab
        ref = last_hop_before(run.defense.hops(), target, time.time())
        starts = episode_starts(phases, interval_s, ref if ref is not None else time.time(),
                                time.time() + 2.0, EPISODE_SPACING_S)
        starts_file = raw / "episode_starts.json"
        starts_file.write_text(json.dumps(starts))
        out = raw / "attack_timed.json"
        # Scans run one after another and may each overrun their spacing (up to the
        # attacker's --scan-timeout-s, 15 s) when short intervals hide the target.
        bound_s = starts[-1] - time.time() + 15.0 * len(starts) + max(gaps) + 10.0
        ctx.stage(f"{len(starts)} staged episodes, gaps {cfg['gaps_s']} s "
                  f"(about {starts[-1] - time.time() + max(gaps):.0f} s)")
        attack = run_in_host(lab, plan.attacker.name, "attacks.attacker_timed", [
            "--plan", str(run.plan_path), "--targets", plan.subnet, "--out", str(out),
            "--starts-file", str(starts_file), "--gaps-s", cfg["gaps_s"],
            "--timeout-s", "1"], "attack_timed.log", bound_s)
        attack.check()
        outcome = attack.outcome(out)
        _hmi_rows, _hmi_metrics, checks = run.finish(ctx, plan.attacker.name)
    hops = run.defense.hops()
    spans = mtd.address_spans(plan, hops, cfg["defense"])
    rows = attempt_rows(outcome, ra.plc_records(raw, plan), spans, hops, target, interval_s,
                        gaps, settings.jitter_s)
    metrics = cell_metrics(rows)
    phases_seen = [r["phase_s"] / interval_s for r in rows
                   if r.get("phase_s") is not None and r["gap_s"] == gaps[0]]
    if phases_seen:
        metrics["answer_phase_share_mean"] = sum(phases_seen) / len(phases_seen)
    timeline = {**lab.timeline, "episodes": float(len(starts)),
                **{f"shared_{s}": 1.0 for s in SHARED}}
    return TrialResult(
        tables={"timing_attempts": rows,
                "timing_episodes": [{"episode": e["episode"], "hop_interval_s": interval_s,
                                     "planned_unix_s": e["planned_unix_s"],
                                     "late_s": round(e["scan_start_unix_s"]
                                                     - e["planned_unix_s"], 4),
                                     "scan_s": round(e["scan_end_unix_s"]
                                                     - e["scan_start_unix_s"], 4),
                                     "open_502": len(e.get("found", []))}
                                    for e in outcome.get("rounds", [])]},
        metrics={k: v for k, v in metrics.items() if not math.isnan(v)},
        validity={"attack_completed": not outcome.get("errors"),
                  "real_addresses_unreachable": defended.premise_holds(checks)},
        timeline=timeline)


# --- plots (CSV only) -------------------------------------------------------------------
def _true(value: object) -> bool:
    """A CSV boolean (the bundle writes ``true``; Python's csv module ``True``)."""
    return str(value).lower() == "true"


def cells(rows: list[dict[str, str]]) -> dict[tuple[float, float], dict[str, float]]:
    """(interval, gap) → k, n, model (mean P), delta_s, from ``timing_attempts.csv`` rows of
    valid trials whose target was found."""
    acc: dict[tuple[float, float], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if _true(r.get("target_found")) and r.get("model_p"):
            acc[(float(r["hop_interval_s"]), float(r["gap_s"]))].append(r)
    out = {}
    for key, rs in acc.items():
        out[key] = {"k": sum(_true(r["reached"]) for r in rs), "n": len(rs),
                    "model": sum(float(r["model_p"]) for r in rs) / len(rs),
                    "delta_s": sum(float(r["delta_s"]) for r in rs) / len(rs)}
    return out


def plot(bundle: Path) -> list[tuple[str, str]]:
    path = bundle / "timing_attempts.csv"
    if not path.exists():
        return []
    grid = cells(read_csv(path))
    if not grid:
        return []
    out = []
    fig, ax = plotting.figure()
    intervals = sorted({i for i, _g in grid})
    for interval in intervals:
        xs = sorted(g for i, g in grid if i == interval)
        cs = [grid[(interval, g)] for g in xs]
        ys = [c["k"] / c["n"] for c in cs]
        ci = [wilson_interval(int(c["k"]), int(c["n"])) for c in cs]
        color = plotting.plt.get_cmap("viridis")(intervals.index(interval)
                                                  / max(1, len(intervals) - 1) * 0.9)
        ax.errorbar(xs, ys, yerr=[[y - lo for y, (lo, _h) in zip(ys, ci, strict=True)],
                                  [hi - y for y, (_l, hi) in zip(ys, ci, strict=True)]],
                    marker="o", capsize=3, linestyle="none", color=color,
                    label=f"I = {interval:g} s (measured)")
        ax.plot(xs, [c["model"] for c in cs], linestyle="--", color=color)
    ax.set_ylim(-0.05, 1.05)
    out.append(finish(fig, bundle, "timing_grid", "Share of exploits the target PLC logged, per "
                      "gap and hop interval, with Wilson 95% intervals; dashed: the model "
                      "max(0, 1 - Δ/I) (with hop jitter: its length-biased form) averaged over "
                      "the cell's measured Δ (answer to exploit).", ax,
                      xlabel="recon-to-exploit gap (s)",
                      ylabel="exploit success (reached / target found)",
                      title="Staged attacker vs hop interval: measured (Wilson 95%) and model "
                      "(dashed)", legend={"fontsize": 7, "ncol": 2}))
    fig, ax = plotting.figure()
    xs = [c["delta_s"] / i for (i, _g), c in grid.items()]
    ys = [c["k"] / c["n"] for c in grid.values()]
    ax.plot([0, 1, max([1.5, *xs])], [1, 0, 0], color="black", linestyle="--",
            label="model: max(0, 1 - Δ/I)")
    ax.scatter(xs, ys, color="#4477aa", zorder=3, label="measured cells")
    out.append(finish(fig, bundle, "timing_model", "Every cell's measured success against its "
                      "mean Δ/I, with the fixed-interval model's line.", ax,
                      xlabel="mean Δ / I (answer-to-exploit time over hop interval)",
                      ylabel="measured exploit success",
                      title="Measured vs model, every (interval, gap) cell",
                      legend={"fontsize": 8}))
    return out


EXPERIMENT = Experiment.from_module(
    __name__, "mtd-timing",
    "staged attacker's success over recon-to-exploit gap x hop interval, "
    "measured vs the uniform-phase model",
    needs_nmap=True)
