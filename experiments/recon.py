"""``recon``: the attacker's reconnaissance of the ICS, scored against the ground truth, with
and without moving-target defenses.

From inside the attacker's namespace, ``python -m attacks.recon`` runs host discovery
(``nmap -sn -n``) over the plan's subnet, a TCP SYN scan of the ICS ports on what it found,
and nmap's ``modbus-discover`` script (bounded in time) on port 502. The PLCs run real
pymodbus servers; the HMI polls them throughout. Then the attacker waits a recon-to-exploit
gap and tries one Modbus read on every address it found with 502 open.

Each trial runs once per defense (``--defense none,rhm`` by default; ``all`` adds ``nat``),
paired on the same seed. Recorded per run: host precision and recall against who really
answered at each found address when it was found, open ports and Modbus devices identified,
the share of findings still valid over time after the scan (staleness), the attacker's Modbus
success at exploit time, HMI availability and latency, RTT between authorized hosts, hop
latency. Under a defense the run first passes the validity check (the protected hosts' real
addresses do not answer the attacker: ARP, ICMP, TCP 502), and every run's discovery sweep
must find some host (``network_answered``); a run that fails a check is counted as "premise
failed" and not scored.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from argparse import ArgumentTypeError
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from attacks.recon import scaled_budget_s
from attacks.recon_run import DEFAULT_STAGES, STAGES
from common.cli import port_list
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import AddressPlan
from experiments import defended, mtd
from experiments import recon_attackers as ra
from experiments.figures import finish
from experiments.parsers import ParseError, parse_ping
from experiments.runner import TrialContext
from experiments.scoring import (
    AttackAttempt,
    matching_records,
    modbus_identified,
    s7_identified,
    score_attack,
    score_hosts,
    score_ports,
)
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import plc_specs
from lab.hostrun import run_in_host
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import percentile, summarize

# Modbus/TCP, S7comm, DNP3, EtherNet/IP, plus the usual IT suspects.
DEFAULT_PORTS = "22,80,102,443,502,20000,44818"


def parse_ports(text: str) -> list[int]:
    """``--ports`` text (ports and LO-HI ranges) → sorted unique ports; UserError when bad."""
    try:
        return sorted(port_list(text))
    except ArgumentTypeError as exc:
        raise UserError(f"--ports: {exc}") from None


def parse_stages(text: str) -> list[str]:
    stages = [s.strip() for s in text.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            raise UserError(f"--stages: unknown stage {s!r} (choose from {', '.join(STAGES)})")
    if "discovery" not in stages:
        raise UserError("--stages: the discovery stage is required")
    return stages


PARAMS = (
    Param("ports", "str", DEFAULT_PORTS, "TCP ports to scan (list and LO-HI ranges)",
          parse=parse_ports),
    Param("stages", "str", ",".join(DEFAULT_STAGES), f"recon stages, from {', '.join(STAGES)}",
          parse=parse_stages),
    Param("scanner", "str", "nmap", "recon engine; both: each trial scans with each engine, "
          "on the same network and seed", choices=("nmap", "scapy", "both")),
    Param("scan_timeout_s", "float", 120.0, "bound on the whole reconnaissance of a /24 "
          "(a larger subnet gets proportionally more: four times for a /22)", 5, 3600,
          quick=60.0),
    Param("defense", "str", "none,rhm", "defenses to compare, each trial under each: "
          "comma-separated from none, rhm, nat, or all", parse=mtd.parse_defenses),
    Param("hop_interval_s", "float", 2.0, "moving-target hop interval (rhm, nat)", 0.5, 3600),
    Param("exploit_gap_s", "float", 4.0, "recon-to-exploit gap: seconds from the end of the "
          "scan to the Modbus attempt", 0, 3600),
    Param("flow_idle_s", "int", 10, "idle time after which a conversation's flows (and its "
          "old virtual address) expire", 1, 3600),
    Param("attacker", "str", "staged", "attackers to compare, each trial under each defense: "
          f"comma-separated from {', '.join(ra.ATTACKERS)}, or all", parse=ra.parse_attackers),
    Param("window_s", "float", 120.0, "how long the persistent attacker keeps attacking", 1,
          3600, quick=15.0),
    defended.HOP_JITTER,
)


def conditions(cfg: dict[str, Any]) -> list[str]:
    """defense x attacker: the defenses alone for the one default attacker (``rhm``), else
    ``rhm+fast``...; with ``--scanner both`` the staged attacker once per engine
    (``rhm+scapy``, ``rhm+staged+scapy`` beside other attackers)."""
    defenses = mtd.parse_defenses(cfg["defense"])
    attackers = ra.parse_attackers(cfg.get("attacker", "staged"))
    engines = ("nmap", "scapy") if cfg["scanner"] == "both" else ("",)
    out = []
    for d in defenses:
        for a in attackers:
            for e in (engines if a == "staged" else ("",)):
                parts = [d] + ([a] if attackers != ["staged"] else []) + ([e] if e else [])
                out.append("+".join(parts))
    return out


def require_hosts(plan: AddressPlan, defense: str) -> None:
    """UserError when ``plan`` has no attacker, or no protected host for ``defense``."""
    if plan.attacker is None:
        raise UserError(f"topology {plan.name} has no attacker host")
    if defense != "none" and not plan.protected:
        raise UserError(f"topology {plan.name} has no protected host for {defense}")


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """The topology can run every condition (before anything is created)."""
    for condition in conditions(cfg):
        require_hosts(plan, split_condition(condition, cfg["scanner"])[0])
    defended.check_jitter(cfg, [cfg["hop_interval_s"]])


def split_condition(condition: str, scanner: str) -> tuple[str, str]:
    """``rhm+scapy`` → ('rhm', 'scapy'); ``rhm`` → ('rhm', the configured scanner)."""
    defense, *rest = (condition or "none").split("+")
    engine = next((p for p in rest if p in ("nmap", "scapy")), "")
    return defense, engine or (scanner if scanner != "both" else "nmap")


def condition_attacker(condition: str) -> str:
    """``rhm+fast`` → 'fast'; ``rhm``, ``rhm+scapy`` → 'staged'."""
    return next((p for p in (condition or "").split("+")[1:] if p in ra.ATTACKERS), "staged")


def _stage_duration(outcome: dict, names: tuple[str, ...]) -> float:
    total = 0.0
    hit = False
    for st in outcome.get("stages", []):
        if st.get("name") in names and st.get("duration_s") is not None:
            total += float(st["duration_s"])
            hit = True
    return total if hit else math.nan


def _unix(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def trial(ctx: TrialContext,
          watch: Callable[[Lab], AbstractContextManager[Any]] | None = None) -> TrialResult:
    """One recon run under ``ctx.condition`` (the defense).

    watch: called with the running lab once it is up; the context manager it returns wraps
        everything the trial does in the lab and exits before teardown (e.g. mtd-sweep reads
        the controller's CPU time around the run).
    """
    cfg = ctx.config
    ports = parse_ports(cfg["ports"])
    stages = parse_stages(cfg["stages"])
    defense, scanner = split_condition(ctx.condition, cfg["scanner"])
    require_hosts(ctx.plan, defense)
    if condition_attacker(ctx.condition) != "staged":
        return ra.model_trial(ctx, defense, condition_attacker(ctx.condition), watch)
    attacker = ctx.plan.attacker
    assert attacker is not None
    raw = ctx.raw_dir
    outcome_path = raw / "recon_outcome.json"
    nmap_dir = raw / "recon"
    nmap_dir.mkdir(exist_ok=True)
    settings = defended.settings(ctx, defense, cfg["hop_interval_s"])
    phase_s = ra.attack_phase_s(ctx.seed, ctx.condition, cfg["hop_interval_s"], defense)
    hmi = ctx.plan.hosts_with_role("hmi")
    plcs = ctx.plan.hosts_with_role("plc")
    # With no defense the staged attacker changes nothing a host reset does not undo: the
    # run's kept lab may serve it (lab.warm).
    with defended.defended_lab(ctx, settings, watch=watch, phase_s=phase_s,
                               reusable=defense == "none") as run:
        lab, plan_path = run.lab, run.plan_path
        ctx.stage(f"reconnaissance ({scanner}: {', '.join(stages)})")
        scan_budget_s = scaled_budget_s(cfg["scan_timeout_s"],
                                        ctx.plan.network.num_addresses - 2)
        scan = run_in_host(lab, attacker.name, "attacks.recon", [
            "--plan", str(plan_path), "--targets", ctx.plan.subnet,
            "--ports", ",".join(map(str, ports)), "--stages", ",".join(stages),
            "--engine", scanner, "--timeout-s", f"{scan_budget_s:g}",
            "--out", str(outcome_path), "--raw-dir", str(nmap_dir)], "recon.log",
            scan_budget_s + 30)
        scan.check()
        scan_end = time.time()
        outcome = scan.outcome(outcome_path)
        rtt_rows: list[dict[str, Any]] = []
        if hmi and plcs:
            ctx.stage("RTT between authorized hosts")
            # 20 ms apart (root may; an echo takes under 1 ms): five echoes in 0.1 s
            out = lab.run(hmi[0].name, ["ping", "-n", "-c", "5", "-i", "0.02", "-W", "1",
                                        plcs[0].ip], timeout_s=15).stdout
            (raw / f"ping_{hmi[0].name}_{plcs[0].name}.txt").write_text(out)
            try:
                rtt_rows = [{"src": hmi[0].name, "dst": plcs[0].name, "seq": q, "rtt_ms": r}
                            for q, r in parse_ping(out).rtts_ms]
            except ParseError:
                rtt_rows = []
        wait_s = scan_end + cfg["exploit_gap_s"] - time.time()
        if wait_s > 0:
            ctx.stage(f"waiting the recon-to-exploit gap ({wait_s:.1f} s)")
            time.sleep(wait_s)
        findings = {f["address"]: f for f in outcome.get("findings", [])}
        modbus_targets = [a for a, f in findings.items() if 502 in f.get("open_ports", [])]
        exploit_unix = time.time()
        probe_results: list[dict[str, Any]] = []
        if modbus_targets:
            ctx.stage(f"exploit: Modbus to {len(modbus_targets)} address(es)")
            probe_path = raw / "exploit_outcome.json"
            probe = run_in_host(lab, attacker.name, "attacks.modbus_probe", [
                "--plan", str(plan_path), "--targets", ",".join(modbus_targets),
                "--timeout-s", "1", "--out", str(probe_path)], "exploit.log",
                10 + 2 * len(modbus_targets))
            probe.check()
            probe_results = probe.outcome(probe_path).get("results", [])
        hmi_rows, hmi_metrics, checks = run.finish(ctx, attacker.name)
    hops = run.defense.hops()
    return _score(ctx, defense, outcome, findings, probe_results, exploit_unix, scan_end,
                  hops, checks, ports, stages, hmi_rows, hmi_metrics, rtt_rows,
                  {**lab.timeline, "attack_phase_s": phase_s})


def recon_validity(outcome: dict, findings: dict[str, dict], stages: list[str]
                   ) -> dict[str, bool]:
    """The premise checks every recon run has, whatever the defense."""
    validity = {"recon_completed": not outcome.get("interrupted", False)
                and not outcome.get("errors")}
    if "discovery" in stages:
        # Unprotected hosts answer under every defense: a sweep that found none of them means
        # the network did not carry the attacker's traffic (seen once on a 1000-port switch).
        validity["network_answered"] = bool(findings)
    return validity


def _score(ctx: TrialContext, defense: str, outcome: dict, findings: dict[str, dict],
           probe_results: list[dict], exploit_unix: float, scan_end: float,
           hops: list[HopRecord], checks: list, ports: list[int], stages: list[str],
           hmi_rows: list[dict], hmi_metrics: dict[str, float], rtt_rows: list[dict],
           timeline: dict[str, float]) -> TrialResult:
    cfg = ctx.config
    plan = ctx.plan
    attacker = plan.attacker
    assert attacker is not None
    started = _unix(outcome["started_at"])
    spans = mtd.address_spans(plan, hops, defense)
    found = [mtd.Finding(a, started + float(f.get("first_seen_s") or 0.0))
             for a, f in findings.items()]
    truth = {h.name for h in plan.hosts if h.name != attacker.name}
    score = mtd.score_findings(found, spans, truth)
    owners = score.owners

    ports_by_host: dict[str, set[int]] = defaultdict(set)
    for addr, f in findings.items():
        if owners.get(addr):
            ports_by_host[owners[addr]] |= set(f.get("open_ports", []))
    plc_names = {h.name for h in plan.hosts_with_role("plc")}
    # Ground truth per protocol: the plan says which PLC speaks what and on which port.
    specs = {s.host: s for s in plc_specs(plan)}
    truth_ports = {name: ({specs[name].port} if name in specs else set()) for name in truth}
    port_score = score_ports(ports_by_host, truth_ports, ports)
    modbus_plcs = {n for n in plc_names if specs[n].protocol == "modbus"}
    s7_plcs = {n for n in plc_names if specs[n].protocol == "s7"}
    identified = {owners[a] for a, f in findings.items() if owners.get(a)
                  and modbus_identified(f)}
    modbus = score_hosts(identified, modbus_plcs)
    s7 = score_hosts({owners[a] for a, f in findings.items() if owners.get(a)
                      and s7_identified(f)}, s7_plcs)

    # Success is counted at the target: the PLCs' own request logs, not address spans.
    records = ra.plc_records(ctx.raw_dir, plan)
    attempts = [AttackAttempt.from_dict(r, tactic="staged") for r in probe_results]
    attack = score_attack(attempts, records, modbus_plcs, "staged")  # the probe is Modbus
    exploit_rows = []
    for r, a in zip(probe_results, attempts, strict=True):
        hits = matching_records(a, records)
        exploit_rows.append({"address": r["address"], "owner_when_found": owners.get(
            r["address"]) or "", "owner_at_exploit": mtd.owner_at(
            spans, r["address"], exploit_unix) or "", "attacker_saw_reply": r.get("reached"),
            "reached_plc": hits[0].plc if hits else "", "src_port": a.src_port,
            "latency_ms": r.get("latency_ms"), "error": r.get("error", "")})

    horizon_s = cfg["exploit_gap_s"] + 2 * cfg["hop_interval_s"]
    offsets = [round(0.25 * i, 2) for i in range(int(horizon_s / 0.25) + 1)]
    # Staleness from the moment each host answered (nmap's packet trace), not the scan's end.
    curve = mtd.staleness_since_found(found, spans, offsets)
    staleness_rows = [{"t_after_reply_s": o, "valid_share": v} for o, v in curve]

    host_rows = []
    for f in sorted(found, key=lambda x: tuple(map(int, x.address.split(".")))):
        spec = plan.by_ip(f.address)
        host_rows.append({"ip": f.address, "owner": owners.get(f.address) or "",
                          "real_host": spec.name if spec else "",
                          "first_seen_s": round(f.found_unix_s - started, 4),
                          "found_by": findings[f.address].get("found_by", ""),
                          "open_ports": " ".join(map(str, findings[f.address].get(
                              "open_ports", []))),
                          "modbus_identified": modbus_identified(findings[f.address]),
                          "s7_identified": s7_identified(findings[f.address])})
    stage_rows = [{"stage": st.get("name"), "duration_s": st.get("duration_s"),
                   "start_s": st.get("started_s", st.get("start_s"))}
                  for st in outcome.get("stages", [])]
    hop_rows = [{"t_unix_s": r.time_unix_s, "host": r.host, "old_virtual": r.old_virtual or "",
                 "new_virtual": r.new_virtual, "latency_ms": r.decision_ms} for r in hops]
    latencies = mtd.hop_latencies_ms(hops)
    rtts = [r["rtt_ms"] for r in rtt_rows if r["seq"] > 1] or [r["rtt_ms"] for r in rtt_rows]
    metrics: dict[str, float] = {
        "host_precision": score.precision,
        "host_recall": score.recall,
        "port_recall": port_score.recall,
        "unexpected_open_ports": float(port_score.unexpected),
        **({"modbus_id_precision": modbus.precision, "modbus_id_recall": modbus.recall}
           if "modbus" in stages else {}),
        **({"s7_id_precision": s7.precision, "s7_id_recall": s7.recall}
           if "s7" in stages and s7_plcs else {}),
        "findings_valid_at_exploit": mtd.valid_share(found, spans, exploit_unix),
        **ra.attack_metrics(attack),
        "attack_phase_s": timeline.get("attack_phase_s", math.nan),
        "scan_s": scan_end - started,
        "discovery_s": _stage_duration(outcome, ("discovery",)),
        "port_scan_s": _stage_duration(outcome, ("syn", "connect", "version", "modbus",
                                                   "s7")),
        "rtt_authorized_p50_ms": percentile(rtts, 50) if rtts else math.nan,
        **({"hop_latency_p50_ms": percentile(latencies, 50),
            "hop_latency_p95_ms": percentile(latencies, 95),
            "hops": float(len(latencies))} if latencies else {}),
        "build_s": timeline.get("build_s", math.nan),
        "teardown_s": timeline.get("teardown_s", math.nan),
        **hmi_metrics,
    }
    validity = recon_validity(outcome, findings, stages)
    if defense != "none":
        validity["real_addresses_unreachable"] = defended.premise_holds(checks)
    return TrialResult(
        tables={"attack_outcomes": ra.outcome_rows("staged", attack),
                "recon_hosts": host_rows, "recon_stages": stage_rows,
                "staleness": staleness_rows, "exploit": exploit_rows, "hops": hop_rows,
                "reach_check": defended.reach_rows(checks), "rtt_authorized": rtt_rows,
                "hmi": hmi_rows},
        metrics={k: v for k, v in metrics.items() if not (isinstance(v, float)
                                                            and math.isnan(v))},
        validity=validity,
        timeline=timeline,
    )


def _by_condition(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[r.get("condition") or "none"].append(r)
    return out


def plot(bundle: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    config = json.loads((bundle / "config.json").read_text()) if (
        bundle / "config.json").exists() else {}
    hosts = read_csv(bundle / "recon_hosts.csv")
    fig, ax = plotting.figure()
    for cond, rows in _by_condition(hosts).items():
        per_trial: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            if r["owner"] and r["first_seen_s"]:
                per_trial[r["trial"]].append(float(r["first_seen_s"]))
        for i, trial_id in enumerate(sorted(per_trial, key=int)):
            xs = sorted(per_trial[trial_id])
            ax.step([0.0, *xs], range(len(xs) + 1), where="post", alpha=0.8,
                    label=f"{cond}" if i == 0 else None,
                    color=plotting.color(cond))
    ax.set_xlabel("time since the attack started (s)")
    ax.set_ylabel("hosts found at a right address")
    ax.set_title("Reconnaissance progress (one line per trial)")
    ax.legend(fontsize=8, loc="lower right", title="defense")
    out.append((plotting.save(fig, bundle, "recon_progress"),
                "Hosts the attacker found at an address that really reached them when found, "
                "over time, one line per trial, per defense."))

    stale_path = bundle / "staleness.csv"
    if stale_path.exists():
        fig, ax = plotting.figure()
        for cond, rows in _by_condition(read_csv(stale_path)).items():
            by_t: dict[float, list[float]] = defaultdict(list)
            for r in rows:
                if r["valid_share"]:
                    by_t[float(r.get("t_after_reply_s") or r["t_after_scan_s"])].append(
                        float(r["valid_share"]))
            ts = sorted(by_t)
            sums = [summarize(by_t[t]) for t in ts]
            means = [x.mean for x in sums]
            lo = [x.mean - (0 if math.isnan(x.ci95) else x.ci95) for x in sums]
            hi = [x.mean + (0 if math.isnan(x.ci95) else x.ci95) for x in sums]
            ax.plot(ts, means, label=cond, color=plotting.color(cond))
            ax.fill_between(ts, lo, hi, alpha=0.2, color=plotting.color(cond))
        since_reply = "t_after_reply_s" in (read_csv(stale_path)[:1] or [{}])[0]
        if "exploit_gap_s" in config and not since_reply:
            ax.axvline(float(config["exploit_gap_s"]), color="black", linestyle="--",
                       linewidth=1, label="exploit attempt")
        ax.set_ylim(-0.05, 1.05)
        out.append(finish(fig, bundle, "staleness", "Share of the attacker's findings that "
                          "still reach the host they reached when it answered, over time since "
                          "that answer (older bundles: since the scan's end, dashed: the "
                          "exploit attempt).", ax,
                          xlabel="time after the host answered (s)" if since_reply
                          else "time after the scan ended (s)",
                          ylabel="share of findings still valid",
                          title="Staleness of the attacker's findings (mean, 95% CI band)",
                          legend={"fontsize": 8, "title": "defense"}))

    metrics = [r for r in read_csv(bundle / "metrics.csv") if r.get("valid") != "false"]
    shown = ("attacker_modbus_success", "findings_valid_at_exploit", "host_recall",
             "hmi_availability")
    groups = _by_condition(metrics)
    if groups:
        import numpy as np

        fig, ax = plotting.figure()
        conds = list(groups)
        width = 0.8 / len(conds)
        for i, cond in enumerate(conds):
            vals = []
            errs = []
            for m in shown:
                xs = [float(r["value"]) for r in groups[cond] if r["metric"] == m and r["value"]]
                sm = summarize(xs)
                vals.append(sm.mean)
                errs.append(0 if math.isnan(sm.ci95) else sm.ci95)
            ax.bar(np.arange(len(shown)) + i * width, vals, width, yerr=errs, capsize=3,
                   label=cond, color=plotting.color(cond))
        ax.set_xticks(np.arange(len(shown)) + width * (len(conds) - 1) / 2)
        ax.set_xticklabels([m.replace("_", " ") for m in shown], fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("share (mean ± 95% CI over valid trials)")
        ax.set_title("What each defense buys and costs")
        ax.legend(fontsize=8, title="defense")
        out.append((plotting.save(fig, bundle, "defense_outcomes"),
                    "Attacker's Modbus success at exploit time, findings still valid then, "
                    "hosts found, and HMI availability, per defense (valid trials only)."))

    out += ra.plot_persistent(bundle)
    stages = read_csv(bundle / "recon_stages.csv") if (bundle / "recon_stages.csv").exists() \
        else []
    by_stage: dict[str, list[float]] = defaultdict(list)
    for r in stages:
        if r["duration_s"]:
            by_stage[r["stage"]].append(float(r["duration_s"]))
    if by_stage:
        fig, ax = plotting.figure()
        names = list(by_stage)
        sums = [summarize(by_stage[n]) for n in names]
        ax.bar(names, [x.mean for x in sums],
               yerr=[0 if math.isnan(x.ci95) else x.ci95 for x in sums], capsize=4,
               color="#4477aa")
        ax.set_ylabel("duration (s), mean ± 95% CI")
        ax.set_title("Duration of each reconnaissance stage (all defenses)")
        out.append((plotting.save(fig, bundle, "recon_stages"),
                    "Mean duration of each reconnaissance stage over trials and defenses, "
                    "with 95% confidence intervals."))
    return out


EXPERIMENT = Experiment.from_module(
    __name__, "recon",
    "nmap reconnaissance vs. moving-target defenses: findings, staleness, "
    "exploit success, HMI cost",
    needs_nmap=True)
