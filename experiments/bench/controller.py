"""``controller``: packet-in → flow-mod rate under a burst of new flows, per engine.

Every host of a star of ``--burst-hosts`` sends to every other at once; the flows in the switch
are sampled over time with ``ovs-ofctl dump-flows``, and the rate is flows installed / time to
the last new flow.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from common.cli import wait_until
from common.errors import LabError
from common.plan import star_plan
from experiments.bench.shared import parse_engines, read_or_empty, switch_prefix
from experiments.runner import TrialContext
from experiments.spec import TrialResult
from lab.lifecycle import running_lab

BURST_TIMEOUT_S = 30.0
STABLE_S = 1.0

_BURST = """
import socket, sys, time
ips = sys.argv[1:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _round in range(3):
    for ip in ips:
        try:
            s.sendto(b"x", (ip, 9))
        except OSError:
            pass
    time.sleep(0.2)
"""


def burst_rate(samples: list[tuple[float, int]]) -> tuple[int, float]:
    """(flows added, seconds to the last new flow) from (t since burst start, flow count)."""
    if not samples:
        return 0, math.nan
    first = samples[0][1]
    last_count = max(c for _t, c in samples)
    t_last = next(t for t, c in samples if c == last_count)
    return last_count - first, t_last


def controller_stats(log_text: str) -> dict[str, int]:
    """The ``controller stats app=... {json}`` lines of a controller log, merged."""
    out: dict[str, int] = {}
    for m in re.finditer(r"controller stats app=\S+ (\{.*\})", log_text):
        try:
            out.update(json.loads(m.group(1)))
        except ValueError:
            continue
    return out


def flow_count(bridge: str) -> int:
    """Flows in ``bridge``'s tables now (``ovs-ofctl dump-flows``)."""
    res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True, timeout=10, check=False)
    return sum(1 for ln in res.stdout.splitlines() if "actions=" in ln)


def sample_flows(bridge: str, senders: Sequence[subprocess.Popen[bytes]], t0: float,
                 base: int) -> list[tuple[float, int]]:
    """(seconds since ``t0``, flow count) samples until every sender has exited and the count
    has held for :data:`STABLE_S`, or :data:`BURST_TIMEOUT_S` after ``t0``."""
    samples: list[tuple[float, int]] = [(0.0, base)]
    stable_since = time.monotonic()

    def settled() -> bool:
        nonlocal stable_since
        count = flow_count(bridge)
        now = time.monotonic()
        if count != samples[-1][1]:
            stable_since = now
        samples.append((now - t0, count))
        done = all(p.poll() is not None for p in senders)
        return done and now - stable_since > STABLE_S

    wait_until(settled, max(0.0, t0 + BURST_TIMEOUT_S - time.monotonic()), interval_s=0.05)
    return samples


def part_controller(ctx: TrialContext) -> TrialResult:
    """Flows per second, flows added and burst seconds (and packet-ins) per engine."""
    cfg = ctx.config
    plan = star_plan(cfg["burst_hosts"])
    bridge = switch_prefix() + plan.switches[0].name
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for engine in parse_engines(cfg["engines"]):
        raw = ctx.raw_dir / engine
        raw.mkdir(exist_ok=True)
        ctx.stage(f"controller burst: {engine}, {len(plan.hosts)} hosts")
        with running_lab(ctx.lab_config(plan=plan, app="l2", engine=engine,
                                        log_dir=raw)) as lab:
            base = flow_count(bridge)
            procs = []
            t0 = time.monotonic()
            for h in plan.hosts:
                others = [o.ip for o in plan.hosts if o.name != h.name]
                procs.append(lab.popen(h.name, [sys.executable, "-c", _BURST, *others],
                                       f"burst_{h.name}.log", what="burst"))
            samples = sample_flows(bridge, procs, t0, base)
            for p in procs:
                lab.stop(p, grace_s=1.0)
            lab.check_healthy()
        added, t_last = burst_rate(samples)
        stats = controller_stats(read_or_empty(raw / "controller.log"))
        rows.extend({"engine": engine, "t_s": t, "flows": c} for t, c in samples)
        if added <= 0 or not t_last > 0:
            raise LabError(f"controller burst ({engine}): no flow installed")
        metrics[f"flows_per_s_{engine}"] = added / t_last
        metrics[f"flows_added_{engine}"] = float(added)
        metrics[f"burst_s_{engine}"] = t_last
        if "packet_ins" in stats:
            metrics[f"packet_ins_{engine}"] = float(stats["packet_ins"])
            metrics[f"packet_ins_per_s_{engine}"] = stats["packet_ins"] / t_last
    return TrialResult(tables={"controller_burst": rows}, metrics=metrics)
