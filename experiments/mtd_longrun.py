"""``mtd-longrun``: the ``persistent`` attacker against the moving-target defense for a long
window, OF-RHM style (Jafarian et al., HotSDN 2012): how many PLCs it finds and reaches over
time, for each virtual-pool size, hop interval and number of decoys, and what the defense costs
the controller.

Each trial runs one condition per (pool size, hop interval, decoys), paired on the trial's seed:
``recon_attackers.model_trial`` with the ``persistent`` attacker (sweep and exploit in rounds for
``--window-s``; success read from the PLCs' own request logs) on the plan widened by
:func:`common.plan.widen_pool` to a /``32 - bits`` network whose every unused address is the
pool (``--pool-bits 8,12,16``: 248, 4088 and 65528 addresses on the default ICS; beyond one
sweep's bound of 4096 the attacker sweeps a fresh seeded sample of 4096 pool addresses a round),
with ``--decoys 0,8`` decoy responders of ``rhm`` (:mod:`controllers.rhm_decoys`) in the pool.
Conditions are named ``pool<bits>_hop<interval>s``, with ``_decoys<N>`` when N > 0
(``pool12_hop5s_decoys8``).

Recorded besides what the attacker models record (``persistent_progress.csv``: distinct PLCs
found and reached by each second): the controller process's CPU share over the run
(``controller_cpu_pct``, :func:`experiments.mtd_sweep.controller_cpu`) and the number of flows
in every switch at the end of the window (``flow_table_flows``, ``ovs-ofctl dump-aggregate``),
the controller's packet-ins and decoy answers (its stats line at exit: ``controller_packet_ins``,
``controller_decoy_answers``): with and without decoys, the decoys' cost. What decoys cost the
attacker: ``attack_decoys_met``, the sweep replies it got from pool addresses no host held at
that moment (decoys: no other unowned address answers ARP), each followed by a connection try
that reaches nothing.

Limits: decoys are ``rhm``'s only (they need the controller): ``--defense nat`` with a decoy
count above 0 is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import hoplog
from common.errors import UserError
from common.plan import AddressPlan, widen_pool
from controllers.rhm_decoys import MAX_DECOYS, DecoyError, check_decoys
from experiments import defended, mtd, recon
from experiments.bench.controller import controller_stats
from experiments.mtd_sweep import CpuReading, controller_cpu, parse_intervals
from experiments.recon_attackers import model_trial, outcome_path
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.defenses import nat_hop_log, rhm_hop_log
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv

POOL_BITS_LO, POOL_BITS_HI = 8, 16
_CONDITION = re.compile(r"^pool(\d+)_hop([0-9.]+)s(?:_decoys(\d+))?$")
_FLOW_COUNT = re.compile(r"flow_count=(\d+)")
LATE_REPLY_S = 10.0  # how late an ARP answer may arrive and still be the PLC's (decoys_met)


# --- pure: conditions -------------------------------------------------------------------------
def _whole_numbers(text: str, flag: str, lo: int, hi: int, why: str = "") -> list[int]:
    """``"8,12"`` → [8, 12], sorted, duplicates dropped; UserError naming ``flag`` and the bad
    item."""
    out: set[int] = set()
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or not lo <= int(item) <= hi:
            raise UserError(f"{flag}: {item!r} is not a whole number in [{lo}, {hi}]{why}")
        out.add(int(item))
    if not out:
        raise UserError(f"{flag}: name at least one value")
    return sorted(out)


def parse_pool_bits(text: str) -> list[int]:
    """``"8,16"`` → [8, 16]: pool sizes as bits (a /16 network at most: the scope guard's
    and :func:`common.plan.widen_pool`'s bound)."""
    return _whole_numbers(text, "--pool-bits", POOL_BITS_LO, POOL_BITS_HI)


def parse_decoys(text: str) -> list[int]:
    """``"0,8"`` → [0, 8]: decoy counts (0: none), at most the controller's bound."""
    return _whole_numbers(text, "--decoys", 0, MAX_DECOYS)


@dataclasses.dataclass(frozen=True, order=True)
class Condition:
    """One cell of the grid: pool size (bits), hop interval, decoy responders."""

    pool_bits: int
    hop_interval_s: float
    decoys: int = 0

    @property
    def name(self) -> str:
        suffix = f"_decoys{self.decoys}" if self.decoys else ""
        return f"pool{self.pool_bits}_hop{self.hop_interval_s:g}s{suffix}"

    @property
    def label(self) -> str:
        """The plot legend's text."""
        return (f"pool 2^{self.pool_bits}, hop {self.hop_interval_s:g} s, "
                f"{self.decoys or 'no'} decoys")


def parse_condition(name: str) -> Condition:
    """``pool8_hop5s`` → Condition(8, 5.0, 0), ``pool8_hop5s_decoys8`` → (8, 5.0, 8);
    ValueError for anything else."""
    m = _CONDITION.match(name)
    if m is None:
        raise ValueError(f"not an mtd-longrun condition: {name!r}")
    return Condition(int(m.group(1)), float(m.group(2)), int(m.group(3) or 0))


def conditions(cfg: dict[str, Any]) -> list[str]:
    return [Condition(b, i, d).name for b in parse_pool_bits(cfg["pool_bits"])
            for i in parse_intervals(cfg["intervals_s"])
            for d in parse_decoys(str(cfg.get("decoys", "0")))]


def check_decoy_counts(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """UserError unless every decoy count is possible: none under ``nat`` (decoys need the
    controller), and each fits every widened pool beside the protected hosts."""
    counts = [d for d in parse_decoys(str(cfg.get("decoys", "0"))) if d]
    if not counts:
        return
    if cfg["defense"] != "rhm":
        raise UserError(f"--decoys {cfg['decoys']}: {cfg['defense']} has no decoys (they need "
                        "the controller); use --defense rhm or --decoys 0")
    for bits in parse_pool_bits(cfg["pool_bits"]):
        pool = len(widen_pool(plan, 32 - bits).virtual_pool)
        try:
            check_decoys(max(counts), pool, len(plan.protected))
        except DecoyError as exc:
            raise UserError(f"--decoys: pool 2^{bits}: {exc}") from None


def flow_count(dump_aggregate: str) -> int:
    """The flow count in ``ovs-ofctl dump-aggregate`` output; ValueError when absent."""
    m = _FLOW_COUNT.search(dump_aggregate)
    if m is None:
        raise ValueError("no flow_count in ovs-ofctl output")
    return int(m.group(1))


def decoys_met(replies: list[dict[str, Any]], spans: list[mtd.AddressSpan],
               pool: frozenset[str], late_s: float = LATE_REPLY_S) -> int:
    """Sweep replies (the outcome's ``replies``) from a pool address no host held at any time
    in the ``late_s`` before the reply arrived: decoys. A loaded switch and controller deliver
    some ARP answers seconds late (measured: up to 8 s), after the PLC that answered has
    hopped away; such a late answer from a PLC's recent address is not a decoy."""
    def held(address: str, t_unix_s: float) -> bool:
        return any(s.address == address and s.start_unix_s <= t_unix_s
                   and s.end_unix_s > t_unix_s - late_s for s in spans)

    return sum(1 for r in replies if r.get("address") in pool
               and not held(r["address"], float(r["t_unix_s"])))


def load_metrics(stats: dict[str, int]) -> dict[str, float]:
    """The controller's counters the experiment reports, from its stats line (none when the
    line is missing, e.g. a controller that died)."""
    keys = {"packet_ins": "controller_packet_ins", "decoy_replies": "controller_decoy_answers"}
    return {name: float(stats[k]) for k, name in keys.items() if k in stats}


# --- I/O ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def watch_load(lab: Lab, reading: CpuReading, flows: dict[str, int]) -> Iterator[None]:
    """The controller's CPU while the body runs, then each switch's flow count (before the
    lab tears down); a switch whose count cannot be read is left out."""
    with controller_cpu(lab, reading):
        yield
    for sw in lab.plan.switches:
        bridge = lab.cfg.switch_prefix + sw.name
        res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", bridge],
                             capture_output=True, text=True, timeout=10, check=False)
        with contextlib.suppress(ValueError):
            flows[sw.name] = flow_count(res.stdout)


def trial(ctx: TrialContext) -> TrialResult:
    """One persistent-attacker window at this condition's pool size, hop interval and decoys."""
    cond = parse_condition(ctx.condition)
    bits, interval_s = cond.pool_bits, cond.hop_interval_s
    cfg = ctx.config
    plan = widen_pool(ctx.plan, 32 - bits)
    run_ctx = dataclasses.replace(ctx, plan=plan, config={
        **cfg, "hop_interval_s": interval_s, "decoys": cond.decoys})
    reading = CpuReading()
    flows: dict[str, int] = {}
    result = model_trial(run_ctx, cfg["defense"], "persistent",
                         watch=lambda lab: watch_load(lab, reading, flows))
    metrics = dict(result.metrics)
    if not math.isnan(reading.pct):
        metrics["controller_cpu_pct"] = reading.pct
    if flows:
        metrics["flow_table_flows"] = float(sum(flows.values()))
    metrics["pool_addresses"] = float(len(plan.virtual_pool))
    raw = ctx.raw_dir
    out_path = outcome_path(raw, "persistent")
    if out_path.exists():
        hops = hoplog.read([rhm_hop_log(raw), *(nat_hop_log(raw, h.name) for h in plan.protected)])
        spans = mtd.address_spans(plan, hops, cfg["defense"])
        replies = json.loads(out_path.read_text()).get("replies", [])
        metrics["attack_decoys_met"] = float(decoys_met(replies, spans,
                                                        frozenset(plan.virtual_pool)))
    log = raw / "controller.log"
    if log.exists():
        metrics.update(load_metrics(controller_stats(log.read_text(errors="replace"))))
    tables = dict(result.tables)
    tables["controller_load"] = [{"pool_bits": bits, "hop_interval_s": interval_s,
                                  "decoys": cond.decoys,
                                  "pool_addresses": len(plan.virtual_pool),
                                  "controller_cpu_pct": reading.pct,
                                  "controller_cpu_s": reading.cpu_s, "wall_s": reading.wall_s,
                                  **{f"flows_{k}": v for k, v in flows.items()}}]
    return dataclasses.replace(result, metrics=metrics, tables=tables)


# --- plots (CSV only) -------------------------------------------------------------------------
def reached_curves(rows: list[dict[str, str]]) -> dict[str, dict[float, list[float]]]:
    """``persistent_progress.csv`` → condition → t_s → PLCs reached by then, one value per
    trial."""
    out: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        try:
            out[r["condition"]][float(r["t_s"])].append(float(r["plcs_reached"]))
        except (KeyError, ValueError):
            continue
    return {c: dict(v) for c, v in out.items()}


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Cumulative PLCs reached against time, one line per (pool size, hop interval, decoys):
    one colour per pool size and hop interval, dashed with decoys."""
    curves = reached_curves(read_csv(bundle / "persistent_progress.csv"))
    if not curves:
        return []
    config = json.loads((bundle / "config.json").read_text()) if (
        bundle / "config.json").exists() else {}
    fig, ax = plotting.figure()
    conds = sorted(parse_condition(name) for name in curves)
    cells = sorted({(c.pool_bits, c.hop_interval_s) for c in conds})
    for cond in conds:
        curve = curves[cond.name]
        ts = sorted(curve)
        means = [sum(curve[t]) / len(curve[t]) for t in ts]
        color = f"C{cells.index((cond.pool_bits, cond.hop_interval_s)) % 10}"
        ax.step(ts, means, where="post", label=cond.label, color=color,
                linestyle="--" if cond.decoys else "-")
    ax.set_xlabel("time since the attack started (s)")
    ax.set_ylabel("PLCs reached (cumulative, mean over trials)")
    ax.set_title(f"Persistent attacker vs {config.get('defense', 'rhm')}: PLCs reached")
    ax.legend(fontsize=8)
    return [(plotting.save(fig, bundle, "cumulative_reached"),
             "Distinct PLCs the persistent attacker reached (a request the PLC's own log shows "
             "answered) by each second of its window, mean over trials, one line per virtual "
             "pool size, hop interval and decoy count (dashed: with decoys).")]


PARAMS = (
    Param("pool_bits", "str", "8,12,16", "virtual pool sizes as bits: the plan's subnet widened "
          f"to a /(32-bits) whose unused addresses are the pool ({POOL_BITS_LO} to "
          f"{POOL_BITS_HI})", quick="8", parse=parse_pool_bits),
    Param("intervals_s", "str", "1,5,30", "hop intervals, comma-separated seconds",
          quick="5", parse=parse_intervals),
    Param("decoys", "str", "0,8", "decoy responders in the pool, comma-separated counts (0: none; "
          f"rhm only, at most {MAX_DECOYS})", quick="0", parse=parse_decoys),
    Param("defense", "str", "rhm", "moving-target defense", choices=("rhm", "nat")),
    Param("window_s", "float", 600.0, "how long the persistent attacker keeps attacking", 1,
          3600, quick=60.0),
    Param("flow_idle_s", "int", 10, "idle time after which a conversation's flows expire", 1,
          3600),
    defended.HOP_JITTER,
)


def check(cfg: dict[str, Any], plan: Any) -> None:
    recon.require_hosts(plan, cfg["defense"])
    conditions(cfg)
    check_decoy_counts(cfg, plan)
    defended.check_jitter(cfg, parse_intervals(cfg["intervals_s"]), "--intervals-s")


EXPERIMENT = Experiment.from_module(
    __name__, "mtd-longrun",
    "persistent attacker for a long window against the moving-target defense: "
    "PLCs found and reached over time per pool size, hop interval and decoys, "
    "controller CPU and flow-table size")
