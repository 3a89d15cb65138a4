"""``bringup``: bring-up + teardown of stars through the lab lifecycle vs plain Mininet.

The plain-Mininet side is the anchor of the comparison, so it stays plain (``Mininet(...)``,
``start``, ``stop``; no controller, no wait, never ``mn -c``); only its record keeping is the lab
runtime's, so a crashed benchmark leaves nothing ``experiments.clean`` cannot find.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from mininet.net import Mininet
from mininet.node import OVSSwitch

from common.plan import AddressPlan, star_plan
from experiments.bench.shared import parse_sizes, switch_prefix
from experiments.runner import TrialContext
from experiments.spec import TrialResult
from lab.lifecycle import running_lab
from lab.network import record_node_shells, record_planned_network
from lab.runstate import RunState
from lab.teardown import remove_recorded
from reporting.stats import summarize
from topologies.base import PlanTopo


def plain_mininet_s(plan: AddressPlan, datapath: str, log_dir: Path) -> dict[str, float]:
    """Plain Mininet: build + start + stop the plan's Topo, no controller; seconds per step.

    Bridges and interfaces are recorded in a run-state file before the build, every node's
    shell (hosts and switches) right after it, so ``experiments.clean`` finishes the job after
    a crash; the network is always stopped in ``finally``.
    """
    topo = PlanTopo(plan, switch_prefix=switch_prefix())
    state = RunState.new(f"bench-plain-{os.getpid()}-{uuid.uuid4().hex[:8]}", log_dir)
    net = None
    out: dict[str, float] = {}
    try:
        record_planned_network(state, topo)
        t0 = time.monotonic()
        # What Mininet(build=True) does, with ``net`` bound first: a Ctrl-C in the middle
        # of the build still stops the nodes made so far.
        net = Mininet(topo=topo, switch=partial(OVSSwitch, datapath=datapath),
                      controller=None, autoSetMacs=False, autoStaticArp=False,
                      waitConnected=False, cleanup=False, build=False)
        net.build()
        out["build_s"] = time.monotonic() - t0
        record_node_shells(state, net)
        t1 = time.monotonic()
        net.start()
        out["start_s"] = time.monotonic() - t1
    finally:
        t2 = time.monotonic()
        try:
            if net is not None:
                net.stop()
        finally:
            # Also when stop() itself fails (Mininet asserts on a shell interrupted mid-command).
            out["teardown_s"] = time.monotonic() - t2
            remove_recorded(state)
            state.remove()
    out["total_s"] = time.monotonic() - t0
    return out


def part_bringup(ctx: TrialContext) -> TrialResult:
    """Seconds per star size for both kinds, and the ratio ours/plain."""
    sizes = parse_sizes(ctx.config["sizes"])
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for n in sizes:
        plan = star_plan(n)
        ours: list[float] = []
        plain: list[float] = []
        for rep in range(1, ctx.config["bringup_reps"] + 1):
            # Alternate which kind goes first, so drift in the machine's load hits both.
            order = ("plain", "ours") if rep % 2 else ("ours", "plain")
            for kind in order:
                ctx.stage(f"bring-up: star {n} hosts, {kind} (rep {rep})")
                logd = ctx.raw_dir / f"bringup_n{n}_{kind}_{rep}"
                logd.mkdir(exist_ok=True)
                if kind == "plain":
                    t = plain_mininet_s(plan, ctx.datapath, logd)
                    plain.append(t["total_s"])
                    rows.append({"n_hosts": n, "kind": kind, "rep": rep,
                                 "build_s": t["build_s"] + t["start_s"], "connect_s": 0.0,
                                 "teardown_s": t["teardown_s"], "total_s": t["total_s"]})
                else:
                    t0 = time.monotonic()
                    with running_lab(ctx.lab_config(plan=plan, app="l2",
                                                    log_dir=logd)) as lab:
                        pass
                    total = time.monotonic() - t0
                    ours.append(total)
                    rows.append({"n_hosts": n, "kind": kind, "rep": rep,
                                 "build_s": lab.timeline.get("build_s", math.nan),
                                 "connect_s": lab.timeline.get("connect_s", math.nan),
                                 "teardown_s": lab.timeline.get("teardown_s", math.nan),
                                 "total_s": total})
        o, p = summarize(ours).mean, summarize(plain).mean
        metrics[f"ours_s_n{n}"] = o
        metrics[f"plain_s_n{n}"] = p
        metrics[f"ratio_n{n}"] = o / p
    return TrialResult(tables={"bringup": rows}, metrics=metrics)
