"""``evasion``: the controller's scan detector against a fixed and an IP-hopping attacker.

The controller runs the scan detector (app ``detector``; ``rhm --detector`` with
``--defense rhm``) with the thresholds of ``--window-s --max-dsts --max-ports --block-s``.
The ICS runs (PLCs, HMI polling) throughout. Each trial runs two conditions on fresh
networks, paired on the trial's seed:

- ``fixed``: the attacker probes from its own address — a bounded loop of kernel TCP
  connects, one at a time, to every (target, port) pair (targets outer), paced by
  ``--probe-interval-s``;
- ``hopping``: the same loop, same order and pacing, by ``attacks.iphop``: the source address
  rotates through a pool of free addresses every ``--attacker-hop-interval-s`` (iptables SNAT
  inside the attacker).

The targets (``--targets``, default the low /27 of the ICS subnet: every real host and many
empty addresses) are probed in a seeded random order, as nmap does. Recorded per condition:
hosts and open ports found (answered probes, scored against who owned the address then),
time-to-block (the detect log's first detection of the attacker's MAC, from the start of
the attack), probes answered after that block, source addresses used, and every detection
of another host's MAC (collateral: a host answering SNAT'd probes ARPs for each pool address).

What it cannot tell: the detector keys on the source MAC, which IP hopping does not change;
a hopping attacker blocked like the fixed one is the measured outcome, not a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.iphop import default_pool
from common import jsonlines
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import AddressPlan
from common.scope import ScopeError, expand_targets
from experiments import defended, mtd
from experiments.figures import finish
from experiments.recon import parse_ports, require_hosts
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.hostrun import run_in_host, wait_in_host
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import summarize

CONDITIONS = ("fixed", "hopping")
ANSWERED = ("open", "closed")  # a refused connection proves a live host too

PARAMS = (
    Param("defense", "str", "none", "moving-target defense under the detector (rhm: the "
          "controller app is rhm --detector)", choices=("none", "rhm")),
    Param("targets", "str", "10.0.0.0/27", "addresses the attacker probes (addresses and "
          "CIDRs inside the plan's subnet), in a seeded random order"),
    Param("ports", "str", "502,80", "TCP ports probed on every target", parse=parse_ports),
    Param("duration_s", "float", 20.0, "how long the attacker probes", 2, 600, quick=10.0),
    Param("probe_interval_s", "float", 0.05, "pause between probe starts", 0.01, 10),
    Param("probe_timeout_s", "float", 0.2, "wait for an answer per probe (TCP connect)",
          0.05, 5),
    Param("attacker_hop_interval_s", "float", 1.0, "hopping: seconds per source address",
          0.1, 600),
    Param("pool_size", "int", 8, "hopping: source addresses in the attacker's pool", 2, 64),
    Param("window_s", "float", 5.0, "detector: sliding window", 0.1, 3600),
    Param("max_dsts", "int", 8, "detector: distinct destinations per source allowed in the "
          "window", 1, 10000),
    Param("max_ports", "int", 12, "detector: distinct destination ports per source allowed "
          "in the window", 1, 65535),
    Param("block_s", "int", 60, "detector: how long a scanner stays blocked", 1, 65535),
    Param("hop_interval_s", "float", 2.0, "rhm: the defense's hop interval", 0.5, 3600),
    Param("flow_idle_s", "int", 10, "rhm: idle time after which a conversation's flows "
          "expire", 1, 3600),
    defended.HOP_JITTER,
)


def conditions(cfg: dict[str, Any]) -> list[str]:
    return list(CONDITIONS)


# --- pure: target order, scoring ------------------------------------------------------------
def probe_targets(plan: AddressPlan, text: str, exclude: Sequence[str], rng: Any
                  ) -> list[str]:
    """The scope guard's expansion of ``text`` minus ``exclude`` (the attacker's own and pool
    addresses), shuffled with ``rng``; UserError when nothing is left or the guard refuses."""
    try:
        targets = [t for t in expand_targets(plan, text) if t not in set(exclude)]
    except ScopeError as exc:
        raise UserError(f"--targets: {exc}") from None
    if not targets:
        raise UserError(f"--targets: nothing left to probe in {text!r}")
    rng.shuffle(targets)
    return targets


@dataclass(frozen=True)
class Probe:
    """One probe, ``t_s`` seconds after the attack started, and who owned the target then."""

    t_s: float
    source: str
    target: str
    port: int
    state: str
    owner: str | None


@dataclass(frozen=True)
class EvasionScore:
    """What the attacker got and when it was stopped.

    time_to_block_s: first detection of the attacker's MAC after the attack started (NaN:
        never). first_found_s: host → when it first answered.
    """

    hosts_found: int
    host_recall: float
    open_ports_found: int
    port_recall: float
    time_to_block_s: float
    probes_sent: int
    probes_answered: int
    probes_answered_after_block: int
    sources_used: int
    first_found_s: dict[str, float]


def score_evasion(probes: Sequence[Probe], truth_hosts: set[str],
                  truth_ports: set[tuple[str, int]], block_t_s: float) -> EvasionScore:
    """Score probes against the ground truth; ``block_t_s`` is NaN when never blocked."""
    first: dict[str, float] = {}
    open_found: set[tuple[str, int]] = set()
    answered = after = 0
    for p in sorted(probes, key=lambda x: x.t_s):
        if p.state not in ANSWERED:
            continue
        answered += 1
        if not math.isnan(block_t_s) and p.t_s >= block_t_s:
            after += 1
        if p.owner is not None:
            first.setdefault(p.owner, p.t_s)
            if p.state == "open":
                open_found.add((p.owner, p.port))
    found = set(first) & truth_hosts
    return EvasionScore(
        hosts_found=len(found),
        host_recall=len(found) / len(truth_hosts) if truth_hosts else math.nan,
        open_ports_found=len(open_found & truth_ports),
        port_recall=len(open_found & truth_ports) / len(truth_ports) if truth_ports
        else math.nan,
        time_to_block_s=block_t_s,
        probes_sent=len(probes),
        probes_answered=answered,
        probes_answered_after_block=after,
        sources_used=len({p.source for p in probes}),
        first_found_s={h: t for h, t in first.items() if h in truth_hosts},
    )


def first_detection_s(detections: Sequence[dict[str, Any]], mac: str, start_unix_s: float
                      ) -> float:
    """Seconds from ``start_unix_s`` to the first detection of ``mac`` at or after it (NaN:
    none)."""
    times = [float(d["time_unix_s"]) - start_unix_s for d in detections
             if str(d.get("src_mac", "")).lower() == mac.lower()
             and float(d["time_unix_s"]) >= start_unix_s]
    return min(times) if times else math.nan


def read_detections(path: Path) -> list[dict[str, Any]]:
    """The detect log's JSON lines (a torn last line is skipped; no file: none)."""
    return [r for r in jsonlines.read(path) if "time_unix_s" in r and "src_mac" in r]


# --- I/O -------------------------------------------------------------------------------------
# The fixed attacker: iphop's probe loop without the hopping (same order, pacing, time-out),
# run inside the attacker's namespace from its own address.
_FIXED_LOOP = """
import json, socket, sys, time
cfg = json.loads(sys.argv[1])
pairs = [(t, p) for t in cfg["targets"] for p in cfg["ports"]]
started = time.time()
t0 = time.monotonic()
probes = []
i = 0
while len(probes) < cfg["max_probes"]:
    now = time.monotonic() - t0
    if now >= cfg["duration_s"]:
        break
    target, port = pairs[i % len(pairs)]
    timeout = min(cfg["connect_timeout_s"], max(0.05, cfg["duration_s"] - now))
    s = time.perf_counter()
    try:
        socket.create_connection((target, port), timeout=timeout).close()
        state = "open"
    except ConnectionRefusedError:
        state = "closed"
    except OSError:
        state = "filtered"
    probes.append({"t_s": round(now, 6), "hop": 0, "source": cfg["source"], "target": target,
                   "port": port, "state": state,
                   "latency_ms": round((time.perf_counter() - s) * 1000, 3)})
    i += 1
    delay = now + cfg["probe_interval_s"] - (time.monotonic() - t0)
    if delay > 0:
        time.sleep(delay)
with open(cfg["out"], "w") as f:
    json.dump({"started_unix_s": started, "probes": probes,
               "sources_used": [cfg["source"]]}, f)
"""


def _attack(lab: Lab, ctx: TrialContext, targets: list[str], ports: list[int],
            plan_path: Path) -> dict[str, Any]:
    """Run this condition's attacker; returns {started_unix_s, probes, sources_used}."""
    cfg = ctx.config
    attacker = ctx.plan.attacker
    assert attacker is not None
    out = ctx.raw_dir / f"attack_{ctx.condition}.json"
    bound_s = cfg["duration_s"] + cfg["probe_timeout_s"] + 30
    max_probes = int(cfg["duration_s"] / cfg["probe_interval_s"]) + 1
    if ctx.condition == "fixed":
        args = json.dumps({"targets": targets, "ports": ports, "source": attacker.ip,
                           "duration_s": cfg["duration_s"], "max_probes": max_probes,
                           "probe_interval_s": cfg["probe_interval_s"],
                           "connect_timeout_s": cfg["probe_timeout_s"], "out": str(out)})
        proc = lab.popen(attacker.name, [sys.executable, "-c", _FIXED_LOOP, args],
                         "attack_fixed.log", what="fixed-probe-loop")
        fixed = wait_in_host(lab, proc, "the fixed probe loop",
                             ctx.raw_dir / "attack_fixed.log", bound_s)
        fixed.check()
        return fixed.outcome(out)
    run = run_in_host(lab, attacker.name, "attacks.iphop", [
        "--plan", str(plan_path), "--targets", ",".join(targets),
        "--ports", ",".join(map(str, ports)), "--pool-size", str(cfg["pool_size"]),
        "--hop-interval-s", f"{cfg['attacker_hop_interval_s']:g}", "--seed", str(ctx.seed),
        "--duration-s", f"{cfg['duration_s']:g}",
        "--probe-interval-s", f"{cfg['probe_interval_s']:g}",
        "--max-probes", str(max_probes),
        "--connect-timeout-s", f"{cfg['probe_timeout_s']:g}", "--out", str(out)],
        "attack_hopping.log", bound_s)
    run.check()
    outcome = run.outcome(out)
    started = dt.datetime.fromisoformat(outcome["started_at"]).timestamp()
    return {"started_unix_s": started, "probes": outcome.get("probes", []),
            "sources_used": outcome.get("sources_used", [])}


def _targets(cfg: dict[str, Any], plan: AddressPlan, rng: Any) -> list[str]:
    """The probe order; UserError when the topology cannot run this configuration."""
    require_hosts(plan, cfg["defense"])
    assert plan.attacker is not None
    # The hopping attacker's pool is never a target (its own addresses).
    pool = default_pool(plan, cfg["pool_size"])
    return probe_targets(plan, cfg["targets"], [plan.attacker.ip, *pool], rng)


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """The topology can run this configuration (before anything is created)."""
    _targets(cfg, plan, random.Random(0))
    defended.check_jitter(cfg, [cfg["hop_interval_s"]])


def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    targets = _targets(cfg, ctx.plan, ctx.rng)
    ports = parse_ports(cfg["ports"])
    raw = ctx.raw_dir
    settings = defended.settings(ctx, cfg["defense"], cfg["hop_interval_s"], detector=True)
    thresholds = ("--window-s", f"{cfg['window_s']:g}", "--max-dsts", str(cfg["max_dsts"]),
                  "--max-ports", str(cfg["max_ports"]), "--block-s", str(cfg["block_s"]))
    with defended.defended_lab(ctx, settings, f"{cfg['defense']}, detector on",
                               controller_args=thresholds) as run:
        ctx.stage(f"{ctx.condition} attacker probing {len(targets)} address(es) x "
                  f"{len(ports)} port(s) for {cfg['duration_s']:g} s")
        attack = _attack(run.lab, ctx, targets, ports, run.plan_path)
        hmi_rows, hmi_metrics, _checks = run.finish(ctx, None)
    detections = read_detections(raw / "detections.jsonl")
    return _score(ctx, attack, detections, run.defense.hops(), ports, hmi_rows, hmi_metrics,
                  dict(run.lab.timeline))


def _score(ctx: TrialContext, attack: dict[str, Any], detections: list[dict[str, Any]],
           hops: list[HopRecord], ports: list[int], hmi_rows: list[dict[str, Any]],
           hmi_metrics: dict[str, float], timeline: dict[str, float]) -> TrialResult:
    plan = ctx.plan
    attacker = plan.attacker
    assert attacker is not None
    start = float(attack["started_unix_s"])
    spans = mtd.address_spans(plan, hops, ctx.config["defense"])
    probes = [Probe(float(p["t_s"]), p["source"], p["target"], int(p["port"]), p["state"],
                    mtd.owner_at(spans, p["target"], start + float(p["t_s"])))
              for p in attack.get("probes", [])]
    targets = {p.target for p in probes}
    truth_hosts = {s.host for s in spans if s.address in targets and s.host != attacker.name}
    plcs = {h.name for h in plan.hosts_with_role("plc")}
    truth_ports = {(h, 502) for h in truth_hosts & plcs if 502 in ports}
    block_t_s = first_detection_s(detections, attacker.mac, start)
    score = score_evasion(probes, truth_hosts, truth_ports, block_t_s)
    by_mac = {h.mac.lower(): h.name for h in plan.hosts}
    detection_rows = [{
        "t_after_start_s": round(float(d["time_unix_s"]) - start, 4),
        "src_mac": d["src_mac"], "src_host": by_mac.get(str(d["src_mac"]).lower(), ""),
        "src_ip": d.get("src_ip") or "", "threshold": d.get("threshold", ""),
        "distinct_dsts": d.get("distinct_dsts"), "distinct_ports": d.get("distinct_ports"),
        "block_s": d.get("block_s")} for d in detections]
    collateral = {r["src_host"] or r["src_mac"] for r in detection_rows
                  if r["src_mac"].lower() != attacker.mac.lower()}
    probe_rows = [{"t_s": p.t_s, "source": p.source, "target": p.target, "port": p.port,
                   "state": p.state, "owner": p.owner or "",
                   "after_block": (not math.isnan(block_t_s)) and p.t_s >= block_t_s}
                  for p in probes]
    found_rows = [{"host": h, "first_answer_s": round(t, 4)}
                  for h, t in sorted(score.first_found_s.items(), key=lambda x: x[1])]
    source_rows = [{"source": s, "order": i + 1}
                   for i, s in enumerate(attack.get("sources_used", []))]
    metrics: dict[str, float] = {
        "hosts_found": float(score.hosts_found),
        "host_recall": score.host_recall,
        "open_ports_found": float(score.open_ports_found),
        "port_recall": score.port_recall,
        "attacker_blocked": 0.0 if math.isnan(block_t_s) else 1.0,
        "time_to_block_s": block_t_s,
        "probes_sent": float(score.probes_sent),
        "probes_answered": float(score.probes_answered),
        "probes_answered_after_block": float(score.probes_answered_after_block),
        "sources_used": float(score.sources_used),
        "collateral_blocked_hosts": float(len(collateral)),
        "build_s": timeline.get("build_s", math.nan),
        **hmi_metrics,
    }
    return TrialResult(
        tables={"evasion_probes": probe_rows, "evasion_found": found_rows,
                "detections": detection_rows, "attack_sources": source_rows,
                "hmi": hmi_rows},
        metrics={k: v for k, v in metrics.items() if not math.isnan(v)},
        validity={"attack_ran": bool(probes)},
        timeline=timeline,
    )


# --- plots (CSV only) -------------------------------------------------------------------------
def _runs(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    out: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[(r.get("condition", ""), r.get("trial", ""))].append(r)
    return out


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Hosts found over time with block events; time-to-block per condition."""
    out: list[tuple[str, str]] = []
    metrics = [r for r in read_csv(bundle / "metrics.csv") if r.get("valid") != "false"]
    blocked: dict[str, list[float]] = defaultdict(list)
    ttb: dict[str, list[float]] = defaultdict(list)
    for r in metrics:
        if r["metric"] == "attacker_blocked" and r["value"]:
            blocked[r["condition"]].append(float(r["value"]))
        if r["metric"] == "time_to_block_s" and r["value"]:
            ttb[r["condition"]].append(float(r["value"]))
    both = all(blocked.get(c) and min(blocked[c]) == 1.0 for c in CONDITIONS)
    finding = ("The IP-hopping attacker was blocked too in every run: the detector keys on "
               "the source MAC, which SNAT does not change." if both else
               "Blocked share per condition: " + ", ".join(
                   f"{c} {sum(blocked[c]) / len(blocked[c]):.0%}" for c in CONDITIONS
                   if blocked.get(c)) + ".")
    found_path = bundle / "evasion_found.csv"
    found = _runs(read_csv(found_path)) if found_path.exists() else {}
    det_path = bundle / "detections.csv"
    dets = _runs(read_csv(det_path)) if det_path.exists() else {}
    config = json.loads((bundle / "config.json").read_text()) if (
        bundle / "config.json").exists() else {}
    attacker_mac = ""
    if (bundle / "plan.json").exists():
        plan = AddressPlan.load(bundle / "plan.json")
        attacker_mac = plan.attacker.mac.lower() if plan.attacker else ""
    runs = sorted({k for k in _runs(metrics)})
    if runs:
        fig, ax = plotting.figure()
        seen: set[str] = set()
        for cond, trial_id in runs:
            xs = sorted(float(r["first_answer_s"]) for r in found.get((cond, trial_id), []))
            colour = plotting.color(cond)
            end = float(config.get("duration_s", xs[-1] if xs else 1.0))
            ax.step([0.0, *xs, end], [0, *range(1, len(xs) + 1), len(xs)], where="post",
                    color=colour, alpha=0.85, label=cond if cond not in seen else None)
            seen.add(cond)
            for d in dets.get((cond, trial_id), []):
                if d["src_mac"].lower() == attacker_mac:
                    ax.axvline(float(d["t_after_start_s"]), color=colour, linestyle="--",
                               linewidth=1)
        out.append(finish(fig, bundle, "hosts_over_time", "Hosts the attacker found (a probe "
                          "answered at an address the host owned then) over time, one line "
                          "per trial and condition; dashed lines: the detector's first block "
                          f"of the attacker's MAC. {finding}", ax,
                          xlabel="time since the attack started (s)",
                          ylabel="hosts found (answered a probe)",
                          title="Scan progress under the detector (dashed: attacker blocked)",
                          legend={"fontsize": 8, "title": "attacker"}))
    if ttb or blocked:
        fig, ax = plotting.figure()
        names = [c for c in CONDITIONS if c in blocked or c in ttb]
        sums = [summarize(ttb.get(c, [])) for c in names]
        ax.bar(names, [0 if math.isnan(s.mean) else s.mean for s in sums],
               yerr=[0 if math.isnan(s.ci95) else s.ci95 for s in sums], capsize=4,
               color=[plotting.color(c) for c in names])
        for i, c in enumerate(names):
            n_blocked = int(sum(blocked.get(c, [])))
            ax.annotate(f"blocked in {n_blocked}/{len(blocked.get(c, []))} runs",
                        (i, 0), textcoords="offset points", xytext=(0, 4), ha="center",
                        fontsize=8)
        ax.set_ylabel("time to block (s), mean ± 95% CI")
        ax.set_title("How fast the detector blocks each attacker")
        out.append((plotting.save(fig, bundle, "time_to_block"),
                    "Seconds from the start of the attack to the detector's first block of "
                    f"the attacker's MAC, per condition (blocked runs only). {finding}"))
    return out


EXPERIMENT = Experiment.from_module(
    __name__, "evasion",
    "scan detector vs a fixed and an IP-hopping attacker: hosts found, "
    "time-to-block, probes answered after the block")
