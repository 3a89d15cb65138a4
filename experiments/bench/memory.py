"""``memory``: memory and CPU per host, for sizing a machine.

For each star size (``--mem-sizes``, default 250, 500, 1000) a lab is built (controller
started, every switch connected) and left idle for ``--mem-idle-s``; then, before teardown:

- ``ovs_rss_mib``: ovs-vswitchd's resident memory growth since before the build, and
  ``ovs_rss_total_mib`` its resident memory (the daemon keeps what earlier, larger labs made
  it allocate, so the growth can be 0 while the total is what a machine must hold);
- ``shells_pss_mib``: the node shells' proportional set size (``/proc/<pid>/smaps_rollup``
  Pss: shared pages split between the processes sharing them, so the sum is what they cost);
- ``controller_rss_mib``: the controller process's resident memory (its tables);
- ``mem_available_drop_mib``: the drop of ``/proc/meminfo`` MemAvailable, machine-wide: the
  above plus the kernel's namespaces, veths and ptys (and anything else the machine does);
- ``ovs_cpu_pct`` and ``idle_share``: ovs-vswitchd's CPU (% of one core) and the machine's
  idle share over the idle window (``/proc/<pid>/stat``, ``/proc/stat``).

Each quantity gets a least-squares line against N: its slope (per host) and intercept are
the metrics, e.g. ``mem_available_drop_mib_per_host``.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from common.plan import star_plan
from experiments.bench.scale import meminfo_kib, ovs_rss_kib, rss_kib
from experiments.bench.shared import parse_counts, read_or_empty
from experiments.runner import TrialContext
from experiments.spec import TrialResult
from lab.fidelity import idle_share, process_cpu_ticks, read_proc_stat
from lab.lifecycle import running_lab

QUANTITIES = ("ovs_rss_mib", "ovs_rss_total_mib", "shells_pss_mib", "controller_rss_mib",
              "mem_available_drop_mib", "ovs_cpu_pct")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pss_kib(smaps_rollup_text: str) -> int:
    """Pss (KiB) from ``/proc/<pid>/smaps_rollup`` text; 0 when absent."""
    m = re.search(r"^Pss:\s+(\d+)", smaps_rollup_text, re.M)
    return int(m.group(1)) if m else 0


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of ys against xs; ValueError with fewer than two
    distinct xs."""
    n = len(xs)
    if n != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs at least two distinct sizes")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def _ovs_ticks() -> int:
    pid = read_or_empty("/var/run/openvswitch/ovs-vswitchd.pid").strip()
    return process_cpu_ticks(read_or_empty(f"/proc/{pid}/stat")) if pid else 0


def measure(ctx: TrialContext, n: int) -> dict[str, float]:
    """Build a star of ``n`` hosts, idle it, and measure (see the module docstring)."""
    base_avail = meminfo_kib(read_or_empty("/proc/meminfo"))
    base_ovs = ovs_rss_kib()
    logd = ctx.raw_dir / f"memory_n{n}"
    logd.mkdir(exist_ok=True)
    with running_lab(ctx.lab_config(plan=star_plan(n), app="l2", log_dir=logd)) as lab:
        stat0, ovs0, t0 = read_proc_stat(), _ovs_ticks(), time.monotonic()
        time.sleep(ctx.config["mem_idle_s"])  # the idle window itself is the measurement
        stat1, ovs1, t1 = read_proc_stat(), _ovs_ticks(), time.monotonic()
        assert lab.net is not None and lab.controller is not None
        shells = [node.pid for node in (*lab.net.hosts, *lab.net.switches) if node.pid]
        out = {
            "ovs_rss_mib": (ovs_rss_kib() - base_ovs) / 1024,
            "ovs_rss_total_mib": ovs_rss_kib() / 1024,
            "shells_pss_mib": sum(pss_kib(read_or_empty(f"/proc/{p}/smaps_rollup"))
                                  for p in shells) / 1024,
            "controller_rss_mib": rss_kib(read_or_empty(
                f"/proc/{lab.controller.pid}/status")) / 1024,
            "mem_available_drop_mib":
                (base_avail - meminfo_kib(read_or_empty("/proc/meminfo"))) / 1024,
            "ovs_cpu_pct": 100.0 * (ovs1 - ovs0) / CLK_TCK / (t1 - t0),
            "idle_share": idle_share(stat0.total, stat1.total),
        }
    return out


def part_memory(ctx: TrialContext) -> TrialResult:
    """One row per size; per-host slopes and intercepts of each quantity."""
    sizes = parse_counts(ctx.config["mem_sizes"], "mem-sizes")
    rows: list[dict[str, Any]] = []
    for n in sizes:
        ctx.stage(f"memory: star {n} hosts, idle {ctx.config['mem_idle_s']:g} s")
        rows.append({"n_hosts": n, **measure(ctx, n)})
    metrics: dict[str, float] = {}
    if len(sizes) >= 2:
        xs = [float(r["n_hosts"]) for r in rows]
        for q in QUANTITIES:
            slope, icpt = fit_line(xs, [r[q] for r in rows])
            metrics[f"{q}_per_host"] = slope
            metrics[f"{q}_intercept"] = icpt
    for r in rows:
        metrics[f"mem_available_drop_mib_n{r['n_hosts']}"] = r["mem_available_drop_mib"]
    return TrialResult(tables={"memory": rows}, metrics=metrics)
