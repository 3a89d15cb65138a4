"""``scale``: ``recon`` (defense none) on the largest star and on a ``linear`` chain.

Peak memory is the drop of ``/proc/meminfo`` MemAvailable (machine-wide: other work on the
machine counts too) and the ovs-vswitchd RSS growth, sampled in the background.
"""

from __future__ import annotations

import math
import re
import threading
import time
from pathlib import Path
from typing import Any

from common.plan import AddressPlan, linear_plan, star_plan
from experiments import recon
from experiments.bench.shared import read_or_empty
from experiments.runner import TrialContext
from experiments.spec import TrialResult, resolve_config

OVS_PID_FILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def meminfo_kib(text: str, key: str = "MemAvailable") -> int:
    """``key``'s value (KiB) from ``/proc/meminfo`` text; ValueError when it is missing."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {key} in meminfo")


def rss_kib(status_text: str) -> int:
    """VmRSS (KiB) from ``/proc/<pid>/status`` text; 0 for a process without one."""
    m = re.search(r"^VmRSS:\s+(\d+)", status_text, re.M)
    return int(m.group(1)) if m else 0


def ovs_rss_kib() -> int:
    """ovs-vswitchd's resident memory (KiB); 0 when it does not run."""
    pid = read_or_empty(OVS_PID_FILE).strip()
    return rss_kib(read_or_empty(f"/proc/{pid}/status")) if pid else 0


class MemorySampler:
    """Background sampling of MemAvailable and ovs-vswitchd RSS; peak deltas from the start."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.base_avail_kib = meminfo_kib(read_or_empty("/proc/meminfo"))
        self.base_ovs_kib = ovs_rss_kib()
        self.min_avail_kib = self.base_avail_kib
        self.max_ovs_kib = self.base_ovs_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.min_avail_kib = min(self.min_avail_kib,
                                         meminfo_kib(read_or_empty("/proc/meminfo")))
            except ValueError:
                pass
            self.max_ovs_kib = max(self.max_ovs_kib, ovs_rss_kib())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mem_mib(self) -> float:
        return (self.base_avail_kib - self.min_avail_kib) / 1024

    @property
    def ovs_rss_delta_mib(self) -> float:
        return (self.max_ovs_kib - self.base_ovs_kib) / 1024


def _recon_on(ctx: TrialContext, plan: AddressPlan, label: str) -> dict[str, float]:
    """Run recon's trial (defense none) in-process on ``plan``; time and memory."""
    rcfg = resolve_config(recon.EXPERIMENT, None, {"topo": plan.name, "n_hosts":
                                                   len(plan.hosts), "seed": ctx.seed})
    raw = ctx.raw_dir / label
    raw.mkdir(exist_ok=True)
    rctx = TrialContext(exp=recon.EXPERIMENT, config=rcfg, trial=ctx.trial, seed=ctx.seed,
                        raw_dir=raw, plan=plan, engine=ctx.engine, datapath=ctx.datapath,
                        progress=ctx.progress, condition="none")
    ctx.stage(f"scale: recon on {label}")
    t0 = time.monotonic()
    with MemorySampler() as mem:
        res = recon.trial(rctx)
    wall = time.monotonic() - t0
    ok = all(res.validity.values())
    return {"wall_s": wall, "completed": float(ok),
            "host_recall": res.metrics.get("host_recall", math.nan),
            "build_s": res.timeline.get("build_s", math.nan),
            "connect_s": res.timeline.get("connect_s", math.nan),
            "teardown_s": res.timeline.get("teardown_s", math.nan),
            "discovery_s": res.metrics.get("discovery_s", math.nan),
            "mem_available_drop_mib": mem.peak_mem_mib,
            "ovs_rss_delta_mib": mem.ovs_rss_delta_mib}


def part_scale(ctx: TrialContext) -> TrialResult:
    """Wall time, completion, recall and memory of recon on the star and the chain."""
    cfg = ctx.config
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    for label, plan in ((f"star{cfg['scale_hosts']}", star_plan(cfg["scale_hosts"])),
                        (f"linear{cfg['linear_hosts']}", linear_plan(cfg["linear_hosts"]))):
        r = _recon_on(ctx, plan, label)
        rows.append({"topology": label, "hosts": len(plan.hosts),
                     "switches": len(plan.switches), **r})
        kind = "star" if label.startswith("star") else "linear"
        for key in ("wall_s", "completed", "host_recall", "mem_available_drop_mib",
                    "ovs_rss_delta_mib", "build_s"):
            if not math.isnan(r[key]):
                metrics[f"{kind}_{key}"] = r[key]
    return TrialResult(tables={"scale": rows}, metrics=metrics)
