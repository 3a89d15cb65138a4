"""The attacker dimension of ``recon``: which attacker runs, when it starts, and how its attempts
are scored at the target.

Attackers (``--attacker``): ``staged`` (the nmap pipeline, a gap, then the exploit:
:mod:`attacks.recon` + :mod:`attacks.modbus_probe`, driven by :mod:`experiments.recon`),
``fast``, ``persistent`` and ``aware`` (:mod:`attacks.attacker_fast`, ``_persistent``,
``_aware``, run here). Each starts at a uniformly random phase of the hop schedule, drawn from
the trial seed (same seed, same phase). Success is judged by the PLCs' own request logs
(:func:`experiments.scoring.score_attack`), never by address spans: an attempt reaches a PLC
when the PLC logged an answered request from the attempt's source (ip, port).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from common import requestlog
from common.plan import AddressPlan
from experiments import defended, mtd
from experiments.runner import TrialContext
from experiments.scoring import (
    AttackAttempt,
    AttackScore,
    matching_records,
    score_attack,
    score_tactics,
)
from experiments.spec import TrialResult, parse_names
from lab.hostrun import run_in_host
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import Proportion

ATTACKERS = ("staged", "fast", "persistent", "aware")
MODULES = {"fast": "attacks.attacker_fast", "persistent": "attacks.attacker_persistent",
           "aware": "attacks.attacker_aware"}
AWARE_TACTICS = ("pool_sweep", "port_reuse", "keep_open", "icmp_quote", "spoof_authorized",
                 "mac_follow")


def parse_attackers(text: str) -> list[str]:
    """``staged,fast`` → ['staged', 'fast']; ``all`` → every attacker; UserError when bad."""
    return parse_names(text, "--attacker", "attacker", ATTACKERS)


def attack_phase_s(seed: int, condition: str, hop_interval_s: float, defense: str) -> float:
    """When the attack starts, in seconds after the defense is up: uniform in
    [0, hop_interval_s), from the trial seed and the condition (reproducible); 0 with no
    defense, which has no schedule to be out of phase with (waiting would change nothing)."""
    if defense == "none":
        return 0.0
    return random.Random(f"{seed}:{condition}:phase").uniform(0.0, hop_interval_s)


def outcome_path(raw: Path, attacker: str) -> Path:
    """Where a fast/persistent/aware run's outcome JSON goes in the condition's raw folder."""
    return raw / f"attack_{attacker}.json"


def run_model(lab: Lab, attacker: str, plan_path: Path, raw: Path, cfg: dict[str, Any],
              jitter_s: float, seed: int = 0) -> dict[str, Any]:
    """Run a fast/persistent/aware attacker in the attacker host; its outcome JSON. seed: the
    persistent attacker's (its sample of a pool larger than one sweep)."""
    plan = lab.plan
    assert plan.attacker is not None
    out = outcome_path(raw, attacker)
    args = ["--plan", str(plan_path), "--targets", plan.subnet, "--out", str(out),
            "--timeout-s", "1"]
    bound_s = 60.0
    if attacker == "persistent":
        args += ["--window-s", f"{cfg.get('window_s', 120.0):g}", "--seed", str(seed)]
        bound_s += cfg.get("window_s", 120.0)
    if attacker == "aware":
        args += ["--hop-interval-s", f"{cfg['hop_interval_s']:g}",
                 "--hop-jitter-s", f"{jitter_s:g}"]
        bound_s += cfg["hop_interval_s"] + jitter_s
    run = run_in_host(lab, plan.attacker.name, MODULES[attacker], args, f"attack_{attacker}.log",
                      bound_s)
    run.check()
    return run.outcome(out)


def attempts_of(outcome: dict[str, Any]) -> list[AttackAttempt]:
    """The attempts an attacker model recorded."""
    return [AttackAttempt.from_dict(a) for a in outcome.get("attempts", [])]


def plc_records(raw: Path, plan: AddressPlan) -> list[requestlog.RequestRecord]:
    """Every PLC's request log of this run."""
    return requestlog.read(requestlog.log_path(raw, h.name) for h in plan.hosts_with_role("plc"))


def attack_metrics(score: AttackScore, tactics: dict[str, AttackScore] | None = None
                   ) -> dict[str, float]:
    """Per-trial metrics of an attack scored at the target; proportions as Proportion."""
    metrics: dict[str, float] = {
        "attacker_modbus_success": score.reach_share,
        "attack_success": score.success,
        "attack_no_target": Proportion(int(not score.tried), 1),
        "attack_tried": float(score.tried),
        "attack_connects": float(score.connects),
        "attack_attempts": float(score.attempts),
        "attack_reaches": float(score.reaches),
    }
    for name, s in (tactics or {}).items():
        metrics[f"tactic_{name}_success"] = s.success
        metrics[f"tactic_{name}_no_target"] = Proportion(int(not s.tried), 1)
    return metrics


def outcome_rows(attacker: str, score: AttackScore,
                 tactics: dict[str, AttackScore] | None = None) -> list[dict[str, Any]]:
    """One row per attack (tactic ``all``) and per tactic: outcome and k/n columns."""
    rows = []
    for s in [score, *(tactics or {}).values()]:
        rows.append({"attacker": attacker, "tactic": s.tactic or "all", "outcome": s.outcome,
                     "tried": s.tried, "connects": s.connects, "attempts": s.attempts,
                     "reaches": s.reaches,
                     "success_k": int(bool(s.plcs_reached)) if s.tried else 0,
                     "success_n": 1 if s.tried else 0,
                     "plcs_reached": " ".join(s.plcs_reached),
                     "plcs_reached_k": len(s.plcs_reached), "plcs_total": s.plcs_total})
    return rows


def attempt_rows(attacker: str, attempts: Sequence[AttackAttempt],
                 records: Sequence[requestlog.RequestRecord], t0_unix_s: float,
                 spans: Sequence[mtd.AddressSpan]) -> list[dict[str, Any]]:
    """One row per attempt: who owned the address then, and what the PLC log says."""
    rows = []
    for a in attempts:
        hits = matching_records(a, records)
        rows.append({"attacker": attacker, "tactic": a.tactic, "address": a.address,
                     "owner_at_attempt": mtd.owner_at(spans, a.address, a.started_unix_s) or "",
                     "src_ip": a.src_ip, "src_port": a.src_port,
                     "t_s": round(a.started_unix_s - t0_unix_s, 4), "sent": a.sent,
                     "reached_plc": hits[0].plc if hits else "",
                     "reply_to_reach_ms": round((hits[0].t_unix_s - a.reply_unix_s) * 1000, 3)
                     if hits and a.reply_unix_s else None})
    return rows


def first_reply_to_reach_ms(outcome: dict[str, Any], attempts: Sequence[AttackAttempt],
                            records: Sequence[requestlog.RequestRecord]) -> float:
    """From the first sweep reply to the first request a PLC logged answered (NaN: none)."""
    replies = [float(r["t_unix_s"]) for r in outcome.get("replies", [])]
    reach_ts = [h.t_unix_s for a in attempts for h in matching_records(a, records)]
    if not replies or not reach_ts:
        return math.nan
    return (min(reach_ts) - min(replies)) * 1000.0


def progress_rows(outcome: dict[str, Any], attempts: Sequence[AttackAttempt],
                  records: Sequence[requestlog.RequestRecord], spans: Sequence[mtd.AddressSpan],
                  plc_names: Iterable[str], t0_unix_s: float, step_s: float = 1.0
                  ) -> list[dict[str, Any]]:
    """Distinct PLCs found (a reply at an address the PLC held then) and reached (its log)
    by each time since the attack started: the persistent attacker's figure."""
    plcs = set(plc_names)
    found = sorted((float(r["t_unix_s"]), mtd.owner_at(spans, r["address"],
                                                       float(r["t_unix_s"])))
                   for r in outcome.get("replies", []))
    reached = sorted((h.t_unix_s, h.plc) for a in attempts for h in matching_records(a, records))
    end = max([t for t, _ in found] + [t for t, _ in reached] + [t0_unix_s])
    rows = []
    t = 0.0
    while t0_unix_s + t <= end + step_s:
        cut = t0_unix_s + t
        rows.append({"t_s": t, "plcs_found": len({o for s, o in found if s <= cut and o in plcs}),
                     "plcs_reached": len({p for s, p in reached if s <= cut})})
        t += step_s
    return rows


def score_model(attacker: str, outcome: dict[str, Any], raw: Path, plan: AddressPlan,
                spans: Sequence[mtd.AddressSpan]) -> tuple[dict[str, float],
                                                           dict[str, list[dict[str, Any]]]]:
    """Metrics and tables of one fast/persistent/aware run, judged by the PLC logs."""
    plc_names = [h.name for h in plan.hosts_with_role("plc")]
    records = plc_records(raw, plan)
    attempts = attempts_of(outcome)
    score = score_attack(attempts, records, plc_names)
    tactics = (score_tactics(attempts, records, plc_names, AWARE_TACTICS)
               if attacker == "aware" else None)
    t0 = float(outcome.get("attack_start_unix_s") or 0.0)
    metrics = attack_metrics(score, tactics)
    tables: dict[str, list[dict[str, Any]]] = {
        "attack_outcomes": outcome_rows(attacker, score, tactics),
        "attack_attempts": attempt_rows(attacker, attempts, records, t0, spans)}
    if attacker == "fast":
        metrics["first_reply_to_reach_ms"] = first_reply_to_reach_ms(outcome, attempts, records)
    if attacker == "persistent":
        rows = progress_rows(outcome, attempts, records, spans, plc_names, t0)
        tables["persistent_progress"] = rows
        if rows:
            metrics["persistent_plcs_found"] = float(rows[-1]["plcs_found"])
            metrics["persistent_plcs_reached"] = float(rows[-1]["plcs_reached"])
    return metrics, tables


def model_trial(ctx: TrialContext, defense: str, attacker: str,
                watch: Callable[[Lab], AbstractContextManager[Any]] | None = None
                ) -> TrialResult:
    """One fast/persistent/aware run under ``defense``: the ICS and the defense come up, the
    attack starts at its random phase, then the HMI's figures and the validity check."""
    cfg = ctx.config
    plan = ctx.plan
    assert plan.attacker is not None
    raw = ctx.raw_dir
    settings = defended.settings(ctx, defense, cfg["hop_interval_s"])
    phase_s = attack_phase_s(ctx.seed, ctx.condition, cfg["hop_interval_s"], defense)
    with defended.defended_lab(ctx, settings, watch=watch, phase_s=phase_s) as run:
        ctx.stage(f"attack: {attacker}")
        outcome = run_model(run.lab, attacker, run.plan_path, raw, cfg, settings.jitter_s,
                            settings.seed)
        hmi_rows, hmi_metrics, checks = run.finish(ctx, plan.attacker.name)
    hops = run.defense.hops()
    spans = mtd.address_spans(plan, hops, defense)
    metrics, tables = score_model(attacker, outcome, raw, plan, spans)
    found = [mtd.Finding(r["address"], float(r["t_unix_s"]))
             for r in outcome.get("replies", []) if not r.get("sweep")]
    truth = {h.name for h in plan.hosts if h.name != plan.attacker.name}
    hosts = mtd.score_findings(found, spans, truth)
    metrics.update({"host_precision": hosts.precision, "host_recall": hosts.recall,
                    "attack_phase_s": phase_s, **hmi_metrics,
                    **{k: v for k, v in run.lab.timeline.items()
                       if k in ("build_s", "teardown_s")}})
    tables["hmi"] = hmi_rows
    tables["reach_check"] = defended.reach_rows(checks)
    validity = {"attack_completed": not outcome.get("interrupted") and not outcome.get("errors")}
    if defense != "none":
        validity["real_addresses_unreachable"] = defended.premise_holds(checks)
    return TrialResult(tables=tables,
                       metrics={k: v for k, v in metrics.items()
                                if not (isinstance(v, float) and math.isnan(v))},
                       validity=validity, timeline=dict(run.lab.timeline))


def plot_persistent(bundle: Path) -> list[tuple[str, str]]:
    """The persistent attacker's figure: distinct PLCs found and reached over the window, one
    pair of lines per trial, per defense (from ``persistent_progress.csv``)."""
    path = bundle / "persistent_progress.csv"
    if not path.exists():
        return []
    by_run: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in read_csv(path):
        by_run.setdefault((r.get("condition") or "none", r["trial"]), []).append(r)
    if not by_run:
        return []
    defenses = sorted({cond.split("+")[0] for cond, _t in by_run})
    with plotting.plt.rc_context(plotting.STYLE):
        fig, axes = plotting.plt.subplots(1, len(defenses), sharey=True, squeeze=False,
                                 figsize=(3.2 * len(defenses) + 1.0, 3.6))
    for ax, defense in zip(axes[0], defenses, strict=True):
        for (cond, _trial), rows in sorted(by_run.items()):
            if cond.split("+")[0] != defense:
                continue
            ts = [float(r["t_s"]) for r in rows]
            ax.step(ts, [int(r["plcs_found"]) + 0.04 for r in rows], where="post",
                    linestyle="--", alpha=0.6, color="#4477aa")
            ax.step(ts, [int(r["plcs_reached"]) for r in rows], where="post", alpha=0.8,
                    color="#bb5566")
        ax.set_title(defense)
        ax.set_xlabel("time since start (s)")
        ax.set_yticks(range(int(max([1, *(float(r["plcs_found"]) for rs in by_run.values()
                                          for r in rs)])) + 1))
    axes[0][0].set_ylabel("distinct PLCs")
    axes[0][0].plot([], [], linestyle="--", color="#4477aa", label="found")
    axes[0][0].plot([], [], color="#bb5566", label="reached (PLC log)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Persistent attacker: PLCs found and reached (one line per trial)")
    return [(plotting.save(fig, bundle, "persistent_progress"),
             "Persistent attacker: distinct PLCs found (a reply from an address the PLC held "
             "then, dashed) and reached (the PLC's own request log, solid) over the attack "
             "window, one line per trial, per defense.")]
