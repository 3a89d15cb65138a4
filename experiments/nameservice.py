"""``name-service``: what a moving-target defense costs a legitimate client that is not
exempt from it and finds the PLCs by name (issue 13 item 6, issue 15 item 7).

Each trial runs one condition per defense and hop interval (``none``, ``rhm_hop2s``,
``nat_hop5s``...; ``none`` once, it does not hop), paired on the trial's seed, in a random
order. In each: the PLCs, the defense, the name server it keeps current (in the historian,
:mod:`lab.nameservice`), then the non-exempt HMI (``hmi2``, not authorized: no
real-address exemption) polls every PLC by name for ``--window-s``, honouring the answers'
TTL and moving to the new address when the name changes. Under a defense the run first checks
the premise: the client cannot reach the PLCs' real addresses (else "premise failed").

Figures per condition, from the client's own records (``plc.metrics``): availability (polls
that were ok, Wilson interval, k/n), failed polls, failed connections, reconnects, moves (a
new conversation because the name changed), read latency p50/p95, and the first-packet
set-up cost: the TCP connect time (under ``rhm`` the SYN goes through the controller) and the
first read of each new conversation, both kept in the figures, not dropped.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import dns, jsonlines
from common.errors import UserError
from common.quantiles import percentile
from experiments import mtd
from experiments.mtd_sweep import parse_intervals
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult, parse_names
from lab import defenses
from lab import nameservice as ns
from lab.devices import start_plcs
from lab.lifecycle import running_lab
from plc.metrics import CONNECT, READ_FUNCTIONS, RESOLVE, RequestRecord, records_from_csv
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import Proportion, wilson_interval

TARGET_AVAILABILITY = 0.999
_CONDITION = re.compile(r"^(rhm|nat)_hop([0-9.]+)s$")


# --- pure: conditions and figures ----------------------------------------------------------
def condition_name(defense: str, interval_s: float) -> str:
    return "none" if defense == "none" else f"{defense}_hop{interval_s:g}s"


def parse_condition(name: str) -> tuple[str, float]:
    """``rhm_hop2s`` → ("rhm", 2.0); ``none`` → ("none", inf); ValueError otherwise."""
    if name == "none":
        return "none", math.inf
    m = _CONDITION.match(name)
    if m is None:
        raise ValueError(f"not a name-service condition: {name!r}")
    return m.group(1), float(m.group(2))


def conditions(cfg: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for defense in parse_names(cfg["defense"], "--defense", "defense", defenses.DEFENSES):
        for interval_s in parse_intervals(cfg["intervals_s"]):
            name = condition_name(defense, interval_s)
            if name not in out:
                out.append(name)
    return out


def _median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def client_figures(records: Sequence[RequestRecord]) -> dict[str, float]:
    """The client's figures over its whole window, every PLC pooled (see the module doc).

    Polls follow plc.metrics: a poll is ok when it has a read and every request in it (the
    lookup and connect included) was ok. A move is a connect to another address than the
    previous connect to that PLC."""
    polls: dict[tuple[str, int], list[RequestRecord]] = defaultdict(list)
    for r in records:
        if r.function not in ("write_coil", "write_register"):
            polls[(r.plc, r.poll)].append(r)
    ok = sum(1 for rows in polls.values()
             if any(r.function in READ_FUNCTIONS for r in rows)
             and all(r.outcome == "ok" for r in rows))
    connects = [r for r in records if r.function == CONNECT]
    first_reads: list[float] = []
    moves = 0
    last_peer: dict[str, str] = {}
    by_plc: dict[str, list[RequestRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.t_s):
        by_plc[r.plc].append(r)
    for rows in by_plc.values():
        after_connect = False
        for r in rows:
            if r.function == CONNECT and r.outcome == "ok":
                if r.plc in last_peer and r.peer and r.peer != last_peer[r.plc]:
                    moves += 1
                last_peer[r.plc] = r.peer
                after_connect = True
            elif r.function in READ_FUNCTIONS and after_connect:
                if r.outcome == "ok":
                    first_reads.append(r.latency_ms)
                after_connect = False
    reads = [r.latency_ms for r in records if r.function in READ_FUNCTIONS and r.outcome == "ok"]
    connect_ok = [r.latency_ms for r in connects if r.outcome == "ok"]
    lookups = [r for r in records if r.function == RESOLVE]
    n_ok_connects = len(connect_ok)
    return {
        "availability": Proportion(ok, len(polls)) if polls else math.nan,
        "polls": float(len(polls)),
        "failed_polls": float(len(polls) - ok),
        "failed_connections": float(sum(r.outcome != "ok" for r in connects)),
        "reconnects": float(max(0, n_ok_connects - len(by_plc))),
        "moves": float(moves),
        "lookups": float(len(lookups)),
        "failed_lookups": float(sum(r.outcome != "ok" for r in lookups)),
        "latency_p50_ms": _median(reads),
        "latency_p95_ms": percentile(reads, 95),
        "connect_p50_ms": _median(connect_ok),
        "connect_max_ms": max(connect_ok) if connect_ok else math.nan,
        "first_read_p50_ms": _median(first_reads),
        "lookup_p50_ms": _median([r.latency_ms for r in lookups if r.outcome == "ok"]),
    }


def ttl_ok(queries: Sequence[dns.QueryRecord], hop_interval_s: float) -> bool:
    """Every A answer's TTL is at most the hop interval."""
    return all(q.ttl_s is None or q.ttl_s <= hop_interval_s for q in queries)


# --- I/O ---------------------------------------------------------------------------------------
def trial(ctx: TrialContext) -> TrialResult:
    """One window of the non-exempt client under this condition's defense and hop interval."""
    defense, interval_s = parse_condition(ctx.condition)
    cfg = ctx.config
    plan, client = dns.with_client(ctx.plan)
    ctx = dataclasses.replace(ctx, plan=plan)
    raw = ctx.raw_dir
    plan_path = raw / "plan.json"
    plan.save(plan_path)
    settings = defenses.DefenseSettings(
        defense, hop_interval_s=interval_s if defense != "none" else 2.0, seed=ctx.seed,
        flow_idle_s=cfg["flow_idle_s"], jitter_s=cfg["hop_jitter_s"] if defense != "none"
        else 0.0)
    app, cargs, hop_logs = defenses.controller_setup(settings, plan_path, raw)
    validity: dict[str, bool] = {}
    ctx.stage(f"building the network ({ctx.condition})")
    with running_lab(ctx.lab_config(app=app, controller_args=cargs)) as lab:
        ctx.stage("starting PLCs, defense and name server")
        start_plcs(lab, raw)
        running = defenses.start_defense(lab, settings, plan_path, raw, hop_logs)
        if defense != "none":
            checks = mtd.check_real_addresses(lab, client)
            validity["client_not_exempt"] = not any(c.reachable for c in checks)
        service = ns.start_name_server(lab, running, plan_path, raw,
                                       restrict=cfg["dns_restrict"])
        ctx.stage(f"{client} polls the PLCs by name for {cfg['window_s']:g} s")
        csv_path = ns.start_name_client(lab, service, client, raw, cfg["period_ms"],
                                        cfg["timeout_ms"])
        deadline = time.monotonic() + cfg["window_s"]
        while time.monotonic() < deadline:
            lab.check_healthy()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        ns.stop_name_client(lab, service)
        hops = running.hops()
    with open(csv_path, newline="") as f:
        records = records_from_csv(f)
    queries = [q for q in (dns.QueryRecord.from_json(o) for o in jsonlines.read(service.queries))
               if q is not None]
    figures = client_figures(records)
    if defense != "none":
        validity["ttl_within_hop_interval"] = ttl_ok(queries, interval_s)
    metrics = {k: v for k, v in figures.items() if not math.isnan(v)}
    metrics["hops"] = float(sum(1 for h in hops if not h.first))
    row = {"defense": defense, "hop_interval_s": None if defense == "none" else interval_s,
           "client": client, "server_host": service.server_host,
           "polls_ok": getattr(figures["availability"], "k", 0),
           **{k: v for k, v in figures.items() if k != "availability"},
           "hops": metrics["hops"], "queries": len(queries),
           "max_ttl_s": max((q.ttl_s for q in queries if q.ttl_s is not None), default=None)}
    # The client's every request stays in raw/<condition>/<client>_requests.csv only.
    return TrialResult(tables={"nameservice": [row]}, metrics=metrics, validity=validity)


# --- plots and verdict (CSV only) --------------------------------------------------------------
def pooled_availability(rows: Sequence[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """``nameservice.csv`` rows → condition → (polls ok, polls) over every trial."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        try:
            out[r["condition"]][0] += int(float(r["polls_ok"]))
            out[r["condition"]][1] += int(float(r["polls"]))
        except (KeyError, ValueError):
            continue
    return {c: (k, n) for c, (k, n) in out.items()}


def meets_target(k: int, n: int, target: float = TARGET_AVAILABILITY) -> str:
    """``yes`` (the Wilson lower bound reaches the target), ``point`` (only the estimate
    does), ``no``."""
    if n == 0:
        return "no"
    if wilson_interval(k, n)[0] >= target:
        return "yes"
    return "point" if k / n >= target else "no"


def verdict_lines(pooled: dict[str, tuple[int, int]]) -> list[str]:
    """One line per condition: availability, Wilson interval, k/n, and the verdict."""
    lines = []
    for name in sorted(pooled, key=parse_condition):
        k, n = pooled[name]
        lo, hi = wilson_interval(k, n)
        lines.append(f"{name}: {k / n if n else math.nan:.4f} [{lo:.4f}, {hi:.4f}] {k}/{n}, "
                     f">= {TARGET_AVAILABILITY:.1%}: {meets_target(k, n)}")
    return lines


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Availability (Wilson) and connect time against the hop interval, one line a defense."""
    rows = read_csv(bundle / "nameservice.csv")
    pooled = pooled_availability(rows)
    if not pooled:
        return []
    fig, ax = plotting.figure()
    for defense in ("rhm", "nat", "none"):
        names = sorted((c for c in pooled if parse_condition(c)[0] == defense),
                       key=parse_condition)
        if not names:
            continue
        xs = [parse_condition(c)[1] for c in names]
        if defense == "none":
            k, n = pooled["none"]
            ax.axhline(k / n if n else math.nan, color=plotting.color("none"), ls="--",
                       label="none (real addresses)")
            continue
        ys, lo, hi = [], [], []
        for c in names:
            k, n = pooled[c]
            low, high = wilson_interval(k, n)
            ys.append(k / n if n else math.nan)
            lo.append(ys[-1] - low)
            hi.append(high - ys[-1])
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=defense,
                    color=plotting.color(defense))
    ax.axhline(TARGET_AVAILABILITY, color="grey", lw=0.8, ls=":", label="99.9 %")
    ax.set_xscale("log")
    ax.set_xlabel("hop interval (s)")
    ax.set_ylabel("client availability (polls ok)")
    ax.set_title("Non-exempt client finding the PLCs by name")
    ax.legend(fontsize=8)
    stem = plotting.save(fig, bundle, "nameservice_availability")
    caption = ("Share of the non-exempt client's polls that were ok, every trial pooled, "
               "with 95 % Wilson intervals. " + "; ".join(verdict_lines(pooled)) + ".")
    return [(stem, caption)]


PARAMS = (
    Param("defense", "str", "none,rhm,nat", "defenses (none, rhm, nat, or all)",
          parse=lambda t: parse_names(t, "--defense", "defense", defenses.DEFENSES)),
    Param("intervals_s", "str", "1,2,5,10,30", "hop intervals, comma-separated seconds",
          quick="2,10", parse=parse_intervals),
    # 90 s x 2 PLCs x 10 polls/s x 3 trials = 5400 polls: enough for a Wilson lower bound of
    # 99.9 % when none fails (3840 needed).
    Param("window_s", "float", 90.0, "how long the client polls in each condition", 5, 3600,
          quick=20.0),
    Param("period_ms", "float", 100.0, "the client's poll period", 10, 60000),
    Param("timeout_ms", "float", 500.0, "the client's request and lookup time-out", 10,
          60000),
    Param("flow_idle_s", "int", 10, "idle time after which a conversation's flows expire", 1,
          3600),
    Param("hop_jitter_s", "float", 0.0, "hop interval jitter (each interval ± this)", 0, 3600),
    Param("dns_restrict", "bool", True, "answer only HMIs and authorized hosts (the attacker "
          "gets REFUSED); false answers everyone"),
)


def _check(cfg: dict[str, Any], plan: Any) -> None:
    conditions(cfg)
    if cfg["hop_jitter_s"] >= min(parse_intervals(cfg["intervals_s"])):
        raise UserError(f"--hop-jitter-s {cfg['hop_jitter_s']:g}: must be below every "
                        "hop interval")
    try:
        dns.server_host(plan)
        dns.with_client(plan)
    except ValueError as exc:
        raise UserError(str(exc)) from None


EXPERIMENT = Experiment(
    name="name-service",
    description="a non-exempt HMI finding the PLCs through the defense's name server: "
                "availability, failed connections, reconnects, latency and first-packet "
                "set-up time per defense and hop interval",
    params=PARAMS,
    trial=trial,
    plot=plot,
    conditions=conditions,
    check=_check,
)
