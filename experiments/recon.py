"""``recon``: the attacker's reconnaissance of the ICS, scored against the ground truth.

From inside the attacker's namespace, ``python -m attacks.recon`` runs host discovery
(``nmap -sn -n``) over the plan's subnet and then a TCP SYN scan of the ICS ports on what it
found, and nmap's ``modbus-discover`` script (bounded in time) on port 502. The PLCs run real
pymodbus servers. Recorded per trial: host precision and recall against the plan (the attacker
itself excluded), open ports found against the ports really listening, which hosts were
identified as Modbus devices against the PLCs of the plan, and each stage's duration.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from experiments import plotting
from experiments.bundle import read_csv
from experiments.devices import expected_open_ports, hmi_results, start_ics, stop_hmi
from experiments.errors import LabError, UserError
from experiments.lab import running_lab
from experiments.runner import TrialContext
from experiments.scoring import modbus_identified, score_hosts, score_ports
from experiments.spec import Experiment, Param, TrialResult
from experiments.stats import summarize

# Modbus/TCP, S7comm, DNP3, EtherNet/IP, plus the usual IT suspects.
DEFAULT_PORTS = "22,80,102,443,502,20000,44818"
STAGES = ("discovery", "syn", "connect", "version", "modbus")


def parse_ports(text: str) -> list[int]:
    ports = []
    for item in text.split(","):
        item = item.strip()
        lo, sep, hi = item.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise UserError(f"--ports: {item!r} is not a port or a range LO-HI") from None
        if not (1 <= a <= b <= 65535):
            raise UserError(f"--ports: {item!r} is out of range (1-65535)")
        ports.extend(range(a, b + 1))
    return sorted(set(ports))


def parse_stages(text: str) -> list[str]:
    stages = [s.strip() for s in text.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            raise UserError(f"--stages: unknown stage {s!r} (choose from {', '.join(STAGES)})")
    if "discovery" not in stages:
        raise UserError("--stages: the discovery stage is required")
    return stages


PARAMS = (
    Param("ports", "str", DEFAULT_PORTS, "TCP ports to scan (list and LO-HI ranges)"),
    Param("stages", "str", "discovery,syn,modbus", f"recon stages, from {', '.join(STAGES)}"),
    Param("scanner", "str", "nmap", "recon engine", choices=("nmap", "scapy")),
    Param("scan_timeout_s", "float", 120.0, "bound on the whole reconnaissance", 5, 3600,
          quick=60.0),
)


def _stage_duration(outcome: dict, names: tuple[str, ...]) -> float:
    total = 0.0
    hit = False
    for st in outcome.get("stages", []):
        if st.get("name") in names and st.get("duration_s") is not None:
            total += float(st["duration_s"])
            hit = True
    return total if hit else math.nan


def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    ports = parse_ports(cfg["ports"])
    stages = parse_stages(cfg["stages"])
    attacker = ctx.plan.attacker
    if attacker is None:
        raise UserError(f"topology {ctx.plan.name} has no attacker host")
    plan_path = ctx.raw_dir / "plan.json"
    ctx.plan.save(plan_path)
    outcome_path = ctx.raw_dir / "recon_outcome.json"
    nmap_dir = ctx.raw_dir / "recon"
    nmap_dir.mkdir(exist_ok=True)
    ctx.stage("building the network")
    with running_lab(ctx.lab_config()) as lab:
        ctx.stage("starting PLCs and HMI")
        ics = start_ics(lab, ctx.raw_dir)
        ctx.stage(f"reconnaissance ({cfg['scanner']}: {', '.join(stages)})")
        proc = lab.python(attacker.name, "attacks.recon", [
            "--plan", str(plan_path), "--targets", ctx.plan.subnet,
            "--ports", ",".join(map(str, ports)), "--stages", ",".join(stages),
            "--engine", cfg["scanner"], "--timeout-s", f"{cfg['scan_timeout_s']:g}",
            "--out", str(outcome_path), "--raw-dir", str(nmap_dir)], "recon.log")
        try:
            code = proc.wait(timeout=cfg["scan_timeout_s"] + 30)
        except Exception:
            lab.stop(proc)
            raise LabError(f"recon did not finish within {cfg['scan_timeout_s'] + 30:g} s"
                           ) from None
        if code != 0:
            log_text = (ctx.raw_dir / "recon.log").read_text(errors="replace").strip()
            raise LabError(f"attacks.recon exited with {code}: "
                           f"{log_text.splitlines()[-1] if log_text else '(no output)'}")
        hmi_rows, hmi_metrics = hmi_results(stop_hmi(lab, ics))
        lab.check_healthy()
    try:
        outcome = json.loads(outcome_path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"recon outcome unreadable: {exc}") from None

    truth = ctx.plan.ground_truth(exclude=[attacker.name])
    findings = {f["address"]: f for f in outcome.get("findings", [])}
    hosts = score_hosts(findings, truth)
    found_ports = {ip: set(f.get("open_ports", [])) for ip, f in findings.items()}
    open_truth = expected_open_ports(ctx.plan)
    open_truth.pop(attacker.ip, None)
    port_score = score_ports(found_ports, open_truth, ports)
    plc_ips = {h.ip for h in ctx.plan.hosts_with_role("plc")}
    modbus_found = {ip for ip, f in findings.items() if modbus_identified(f)}
    modbus = score_hosts(modbus_found, plc_ips)

    host_rows = []
    for ip in sorted(set(truth) | set(findings), key=lambda a: tuple(map(int, a.split(".")))):
        spec = ctx.plan.by_ip(ip)
        f = findings.get(ip)
        host_rows.append({
            "ip": ip, "host": spec.name if spec else "", "role": spec.role if spec else "",
            "in_truth": ip in truth, "found": f is not None,
            "first_seen_s": f.get("first_seen_s") if f else None,
            "found_by": f.get("found_by") if f else "",
            "modbus_identified": ip in modbus_found,
        })
    port_rows = []
    for ip in sorted(set(open_truth) | set(found_ports)):
        for port in sorted(set(open_truth.get(ip, ())) | found_ports.get(ip, set())):
            spec = ctx.plan.by_ip(ip)
            port_rows.append({"ip": ip, "host": spec.name if spec else "", "port": port,
                              "open_truth": port in open_truth.get(ip, ()),
                              "found_open": port in found_ports.get(ip, set())})
    stage_rows = [{"stage": st.get("name"), "duration_s": st.get("duration_s"),
                   "start_s": st.get("start_s")} for st in outcome.get("stages", [])]
    metrics = {
        "host_precision": hosts.precision,
        "host_recall": hosts.recall,
        "hosts_found": float(len(findings)),
        "port_recall": port_score.recall,
        **({"modbus_id_precision": modbus.precision, "modbus_id_recall": modbus.recall}
           if "modbus" in stages else {}),
        "unexpected_open_ports": float(port_score.unexpected),
        "discovery_s": _stage_duration(outcome, ("discovery",)),
        "port_scan_s": _stage_duration(outcome, ("syn", "connect", "version", "modbus")),
        "build_s": lab.timeline.get("build_s", math.nan),
        "connect_s": lab.timeline.get("connect_s", math.nan),
        "teardown_s": lab.timeline.get("teardown_s", math.nan),
        **hmi_metrics,
    }
    return TrialResult(
        tables={"recon_hosts": host_rows, "recon_ports": port_rows, "recon_stages": stage_rows,
                "hmi": hmi_rows},
        metrics=metrics,
        validity={"recon_completed": not outcome.get("interrupted", False)
                  and not outcome.get("errors")},
        timeline=dict(lab.timeline),
    )


def plot(bundle: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    hosts = read_csv(bundle / "recon_hosts.csv")
    truth_n = defaultdict(int)
    seen: dict[str, list[float]] = defaultdict(list)
    for r in hosts:
        if r["in_truth"] == "true":
            truth_n[r["trial"]] += 1
        if r["found"] == "true" and r["first_seen_s"]:
            seen[r["trial"]].append(float(r["first_seen_s"]))
    fig, ax = plotting.figure()
    for trial_id in sorted(seen, key=int):
        xs = sorted(seen[trial_id])
        ax.step([0.0, *xs], range(len(xs) + 1), where="post", label=f"trial {trial_id}")
    if truth_n:
        ax.axhline(max(truth_n.values()), color="black", linestyle="--", linewidth=1,
                   label="hosts in the network")
    ax.set_xlabel("time since the attack started (s)")
    ax.set_ylabel("hosts known to the attacker")
    ax.set_title("Reconnaissance progress")
    ax.legend(fontsize=8, loc="lower right")
    out.append((plotting.save(fig, bundle, "recon_progress"),
                "Hosts known to the attacker over time, per trial, against the number of "
                "hosts really in the network (dashed)."))

    stages = read_csv(bundle / "recon_stages.csv")
    by_stage: dict[str, list[float]] = defaultdict(list)
    for r in stages:
        if r["duration_s"]:
            by_stage[r["stage"]].append(float(r["duration_s"]))
    if by_stage:
        fig, ax = plotting.figure()
        names = list(by_stage)
        sums = [summarize(by_stage[n]) for n in names]
        ax.bar(names, [s.mean for s in sums],
               yerr=[0 if math.isnan(s.ci95) else s.ci95 for s in sums], capsize=4,
               color="#4477aa")
        ax.set_ylabel("duration (s), mean ± 95% CI")
        ax.set_title("Duration of each reconnaissance stage")
        out.append((plotting.save(fig, bundle, "recon_stages"),
                    "Mean duration of each reconnaissance stage over trials, with 95% "
                    "confidence intervals."))
    return out


EXPERIMENT = Experiment(
    name="recon",
    description="attacker's nmap reconnaissance of the ICS: host precision/recall, open ports",
    params=PARAMS,
    trial=trial,
    plot=plot,
    needs_nmap=True,
)
