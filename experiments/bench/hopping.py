"""``hopping``: rhm hop latency and the controller's CPU share by protected-host count.

Hop latency is decision to flows in place, from the hop log, p50/p95 for each count
(``--protected``; a star plan whose first N hosts are protected) while hopping every
``--hop-interval-s``; the CPU share is the controller's utime + stime over the window.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from common.errors import LabError
from common.plan import AddressPlan, star_plan
from experiments import mtd
from experiments.bench.shared import parse_protected
from experiments.runner import TrialContext
from experiments.spec import TrialResult
from lab.fidelity import process_cpu_ticks
from lab.lifecycle import running_lab
from reporting.stats import percentile


def protected_star_plan(n_protected: int, n_others: int = 2) -> AddressPlan:
    """A star whose first ``n_protected`` hosts are protected PLCs, then ``n_others``
    authorized hosts, the last of which is the attacker (not authorized)."""
    base = star_plan(n_protected + n_others)
    hosts = []
    for i, h in enumerate(base.hosts):
        if i < n_protected:
            hosts.append(dataclasses.replace(h, role="plc", protected=True))
        elif h.role == "attacker":
            hosts.append(h)
        else:
            hosts.append(dataclasses.replace(h, role="hmi" if i == n_protected else "host",
                                             authorized=True))
    return dataclasses.replace(base, name="star_protected", hosts=tuple(hosts))


def part_hopping(ctx: TrialContext) -> TrialResult:
    """Hop latency percentiles, hop count and controller CPU % per protected-host count."""
    cfg = ctx.config
    counts = parse_protected(cfg["protected"])
    clk_tck = os.sysconf("SC_CLK_TCK")
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for k in counts:
        plan = protected_star_plan(k)
        raw = ctx.raw_dir / f"protected_{k}"
        raw.mkdir(exist_ok=True)
        plan_path = raw / "plan.json"
        plan.save(plan_path)
        settings = mtd.DefenseSettings("rhm", hop_interval_s=cfg["hop_interval_s"],
                                       seed=ctx.seed, flow_idle_s=2)
        app, cargs, hop_logs = mtd.controller_setup(settings, plan_path, raw)
        ctx.stage(f"hopping: {k} protected host(s), {cfg['hop_window_s']:g} s window")
        with running_lab(ctx.lab_config(plan=plan, app=app, controller_args=cargs,
                                        log_dir=raw)) as lab:
            running = mtd.start_defense(lab, settings, plan_path, raw, hop_logs)
            assert lab.controller is not None
            stat = Path(f"/proc/{lab.controller.pid}/stat")
            c0, w0 = process_cpu_ticks(stat.read_text()), time.monotonic()
            t_start = time.time()
            time.sleep(cfg["hop_window_s"])  # the measurement window itself, not a wait
            c1, w1 = process_cpu_ticks(stat.read_text()), time.monotonic()
            lab.check_healthy()
        hops = [h for h in running.hops() if h.time_unix_s >= t_start]
        lat = mtd.hop_latencies_ms(hops)
        if not lat:
            raise LabError(f"hopping: no hop with a latency in {cfg['hop_window_s']:g} s "
                           f"({k} protected)")
        cpu_pct = 100.0 * (c1 - c0) / clk_tck / (w1 - w0)
        rows.extend({"protected": k, "host": h.host, "latency_ms": h.decision_ms}
                    for h in hops if not h.first)
        metrics[f"hop_p50_ms_p{k}"] = percentile(lat, 50)
        metrics[f"hop_p95_ms_p{k}"] = percentile(lat, 95)
        metrics[f"hops_p{k}"] = float(len(lat))
        metrics[f"ctrl_cpu_pct_p{k}"] = cpu_pct
    return TrialResult(tables={"hop_latency": rows}, metrics=metrics)
