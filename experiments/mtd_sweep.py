"""``mtd-sweep``: the moving-target defense's hop interval swept — what a shorter interval
buys against the attacker and what it costs the ICS and the controller.

Each trial runs the ``recon`` scenario (``experiments.recon.trial``: nmap reconnaissance from
the attacker, a recon-to-exploit gap, one Modbus read on every address found with 502 open,
the validity check of the protected hosts' real addresses) once per hop interval of
``--intervals-s``, under one defense (``--defense rhm|nat``), paired on the trial's seed. The
conditions are named ``hop<interval>s`` (``hop1s``, ``hop0.5s``...).

Recorded per interval, besides everything recon records: the controller process's CPU time
over the run (``/proc/<pid>/stat`` utime + stime of ``lab.controller.pid``, read when the lab
is up and again before teardown) as a share of one core (``controller_cpu_pct``). What it
cannot tell: the CPU the OVS userspace datapath spends installing the rewritten flows (that is
another process), and the share is of one core on a machine other runs may be loading too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.plan import AddressPlan
from experiments import defended, recon
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.defenses import DEFENSES
from lab.fidelity import process_cpu_ticks
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import summarize

CONDITION_PREFIX = "hop"
INTERVAL_LO_S = recon.EXPERIMENT.param("hop_interval_s").lo or 0.5
INTERVAL_HI_S = recon.EXPERIMENT.param("hop_interval_s").hi or 3600.0
# recon's parameters the sweep passes through unchanged (defense, interval, gap are its own).
_RECON_PARAMS = ("ports", "stages", "scanner", "scan_timeout_s", "flow_idle_s",
                 "hop_jitter_s")


# --- pure: intervals, conditions, CPU accounting --------------------------------------------
def parse_intervals(text: str) -> list[float]:
    """``"1,2,5"`` → [1.0, 2.0, 5.0], sorted, duplicates dropped; UserError naming the item."""
    out: set[float] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"--intervals-s: {item!r} is not a number of seconds") from None
        if math.isnan(value) or not INTERVAL_LO_S <= value <= INTERVAL_HI_S:
            raise UserError(f"--intervals-s: {item!r} is out of range "
                            f"[{INTERVAL_LO_S:g}, {INTERVAL_HI_S:g}] s")
        out.add(value)
    if not out:
        raise UserError("--intervals-s: name at least one hop interval")
    return sorted(out)


def condition_name(interval_s: float) -> str:
    """1.0 → ``hop1s``; 0.5 → ``hop0.5s`` (the runner's condition and metric prefix)."""
    return f"{CONDITION_PREFIX}{interval_s:g}s"


def interval_of(condition: str) -> float:
    """``hop2s`` → 2.0; ValueError for a name :func:`condition_name` cannot produce."""
    if not (condition.startswith(CONDITION_PREFIX) and condition.endswith("s")):
        raise ValueError(f"not a hop-interval condition: {condition!r}")
    value = float(condition[len(CONDITION_PREFIX):-1])
    if math.isnan(value) or value <= 0:
        raise ValueError(f"not a hop-interval condition: {condition!r}")
    return value


def conditions(cfg: dict[str, Any]) -> list[str]:
    return [condition_name(v) for v in parse_intervals(cfg["intervals_s"])]


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """The topology has what the defense needs; the hop jitter is below every interval."""
    recon.require_hosts(plan, cfg["defense"])
    defended.check_jitter(cfg, parse_intervals(cfg["intervals_s"]), "--intervals-s")


def cpu_share_pct(ticks_before: int, ticks_after: int, wall_s: float,
                  ticks_per_s: float) -> float:
    """CPU time between two readings as a percentage of one core over ``wall_s`` (NaN when
    the wall time is not positive)."""
    if wall_s <= 0 or ticks_per_s <= 0:
        return math.nan
    return 100.0 * (ticks_after - ticks_before) / ticks_per_s / wall_s


@dataclass
class CpuReading:
    """The controller's CPU over one run: ``cpu_s`` in ``wall_s`` (NaN: not measured)."""

    cpu_s: float = math.nan
    wall_s: float = math.nan

    @property
    def pct(self) -> float:
        if math.isnan(self.cpu_s) or not self.wall_s > 0:
            return math.nan
        return 100.0 * self.cpu_s / self.wall_s


def _read_ticks(pid: int) -> int:
    return process_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())


@contextlib.contextmanager
def controller_cpu(lab: Lab, reading: CpuReading) -> Iterator[None]:
    """Fill ``reading`` with the controller's CPU time while the body runs."""
    pid = lab.controller.pid if lab.controller is not None else None
    ticks_per_s = float(os.sysconf("SC_CLK_TCK"))
    try:
        before = _read_ticks(pid) if pid else None
    except (OSError, ValueError):
        before = None
    t0 = time.monotonic()
    yield
    wall_s = time.monotonic() - t0
    if pid is None or before is None:
        return
    try:
        after = _read_ticks(pid)
    except (OSError, ValueError):
        return
    reading.cpu_s = (after - before) / ticks_per_s
    reading.wall_s = wall_s


# --- the experiment ---------------------------------------------------------------------------
PARAMS = (
    Param("intervals_s", "str", "1,2,5,10,30", "hop intervals to sweep, comma-separated "
          f"seconds in [{INTERVAL_LO_S:g}, {INTERVAL_HI_S:g}]; each trial runs every one",
          quick="1,30", parse=parse_intervals),
    Param("defense", "str", "rhm", "moving-target defense whose interval is swept",
          choices=tuple(d for d in DEFENSES if d != "none")),
    Param("exploit_gap_s", "float", 5.0, "recon-to-exploit gap: seconds from the end of the "
          "scan to the Modbus attempt", 0, 3600),
    *(dataclasses.replace(recon.EXPERIMENT.param(n), quick="discovery,syn") if n == "stages"
      else recon.EXPERIMENT.param(n) for n in _RECON_PARAMS),
)


def trial(ctx: TrialContext) -> TrialResult:
    """recon's trial at this condition's interval, plus the controller's CPU share."""
    interval_s = interval_of(ctx.condition)
    cfg = ctx.config
    recon_ctx = dataclasses.replace(
        ctx, condition=cfg["defense"], config={**cfg, "hop_interval_s": interval_s,
                                               "defense": cfg["defense"]})
    reading = CpuReading()
    result = recon.trial(recon_ctx, watch=lambda lab: controller_cpu(lab, reading))
    metrics = dict(result.metrics)
    if not math.isnan(reading.pct):
        metrics["controller_cpu_pct"] = reading.pct
        metrics["controller_cpu_s"] = reading.cpu_s
    p95s = [v for k, v in metrics.items()
            if k.startswith("hmi_") and k.endswith("_latency_p95_ms") and not math.isnan(v)]
    if p95s:
        metrics["hmi_latency_p95_worst_ms"] = max(p95s)
    tables = dict(result.tables)
    tables["controller_load"] = [{
        "defense": cfg["defense"], "hop_interval_s": interval_s,
        "controller_cpu_s": reading.cpu_s, "wall_s": reading.wall_s,
        "controller_cpu_pct": reading.pct}]
    return dataclasses.replace(result, metrics=metrics, tables=tables)


# --- plots (CSV only) -------------------------------------------------------------------------
def metric_by_interval(rows: list[dict[str, str]], metric: str
                       ) -> dict[float, list[float]]:
    """Valid rows of ``metrics.csv`` → hop interval → that metric's per-trial values."""
    out: dict[float, list[float]] = defaultdict(list)
    for r in rows:
        if r.get("metric") != metric or r.get("valid") == "false" or not r.get("value"):
            continue
        try:
            out[interval_of(r.get("condition", ""))].append(float(r["value"]))
        except ValueError:
            continue
    return dict(out)


def _errorbar(ax: Any, data: dict[float, list[float]], label: str, color: str,
              marker: str) -> None:
    """Mean ± 95% CI per interval on a log x axis ticked at the swept intervals."""
    xs = sorted(data)
    sums = [summarize(data[x]) for x in xs]
    ax.errorbar(xs, [s.mean for s in sums],
                yerr=[0 if math.isnan(s.ci95) else s.ci95 for s in sums], capsize=4,
                marker=marker, label=label, color=color)
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()


def plot(bundle: Path) -> list[tuple[str, str]]:
    """The trade-off curve, the controller's CPU and hop latency against the interval."""
    out: list[tuple[str, str]] = []
    config = json.loads((bundle / "config.json").read_text()) if (
        bundle / "config.json").exists() else {}
    defense = config.get("defense", "")
    rows = read_csv(bundle / "metrics.csv")
    success = metric_by_interval(rows, "attacker_modbus_success")
    valid = metric_by_interval(rows, "findings_valid_at_exploit")
    avail = metric_by_interval(rows, "hmi_availability")
    if success or avail:
        import matplotlib.pyplot as plt

        with plt.rc_context(plotting.STYLE):
            fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.0, 6.0))
        if success:
            _errorbar(top, success, "attacker's Modbus success", "#bb5566", "o")
        if valid:
            _errorbar(top, valid, "findings valid at exploit", "#ddaa33", "s")
        top.set_ylim(-0.05, 1.05)
        top.set_ylabel("attacker (share)")
        top.legend(fontsize=8)
        top.set_title(f"Hop interval trade-off ({defense}; mean ± 95% CI over valid trials)")
        if avail:
            _errorbar(bottom, avail, "HMI availability", "#004488", "o")
        bottom.set_ylabel("HMI availability (share)")
        low = min((min(v) for v in avail.values()), default=1.0)
        bottom.set_ylim(min(0.9, low - 0.02), 1.01)
        bottom.set_xlabel("hop interval (s, log scale)")
        bottom.legend(fontsize=8)
        out.append((plotting.save(fig, bundle, "tradeoff"),
                    f"Top: the attacker's Modbus success at exploit time and the share of its "
                    f"findings still valid then; bottom: HMI availability; against the "
                    f"{defense} hop interval (log x), mean ± 95% CI over valid trials."))
    cpu = metric_by_interval(rows, "controller_cpu_pct")
    if cpu:
        fig, ax = plotting.figure()
        _errorbar(ax, cpu, "controller process", "#4477aa", "o")
        ax.set_xlabel("hop interval (s, log scale)")
        ax.set_ylabel("controller CPU (% of one core)")
        ax.set_title(f"Controller load against the hop interval ({defense})")
        out.append((plotting.save(fig, bundle, "controller_cpu"),
                    "CPU time of the controller process over the run (utime + stime from "
                    "/proc) as a percentage of one core, against the hop interval; mean ± "
                    "95% CI. The OVS datapath's own CPU is not included."))
    p50 = metric_by_interval(rows, "hop_latency_p50_ms")
    p95 = metric_by_interval(rows, "hop_latency_p95_ms")
    if p50 or p95:
        fig, ax = plotting.figure()
        if p50:
            _errorbar(ax, p50, "p50", "#228833", "o")
        if p95:
            _errorbar(ax, p95, "p95", "#aa3377", "s")
        ax.set_xlabel("hop interval (s, log scale)")
        ax.set_ylabel("hop latency (ms)")
        ax.set_title(f"Decision-to-enforcement latency of a hop ({defense})")
        ax.legend(fontsize=8)
        out.append((plotting.save(fig, bundle, "hop_latency"),
                    "Time from the hop decision to the new address being enforced (flows "
                    "or NAT rules), p50 and p95 per run, mean ± 95% CI, against the hop "
                    "interval."))
    return out


EXPERIMENT = Experiment.from_module(
    __name__, "mtd-sweep",
    "moving-target hop interval swept: attacker success vs HMI availability, "
    "controller CPU, hop latency",
    needs_nmap=True)
