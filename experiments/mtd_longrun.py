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

**Early stop** (``--stop-when-all-reached``, on by default; ``--no-stop-when-all-reached``
runs every window to its end): the cumulative-reached curve cannot rise once every PLC has
been reached, so as soon as the PLCs' own request logs show that, the attacker is told to
stop (:mod:`experiments.mtd_longrun_watch`; it finishes its round and writes its whole
outcome) and the condition ends. The curve is then extended flat at its maximum to the
window's end, explicitly: ``persistent_progress.csv`` rows past the stop have ``extended`` 1,
and the ``controller_load`` table records ``window_end_s``, ``ran_for_s`` (how long the
attacker actually ran), ``all_reached_s`` and ``stopped_early_s``. CPU, flows, packet-ins,
decoys met and the HMI's figures are over the part that ran. ``controller_load_over_time``:
the controller's CPU share and the switches' flow counts every 5 s
(:class:`experiments.mtd_longrun_watch.LoadSampler`), ``t_s`` from the attack's start
(negative: the lab coming up).

Limits: decoys are ``rhm``'s only (they need the controller): ``--defense nat`` with a decoy
count above 0 is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from common import hoplog
from common.errors import UserError
from common.plan import AddressPlan, widen_pool
from controllers.rhm_decoys import MAX_DECOYS, DecoyError, check_decoys
from experiments import defended, mtd, recon
from experiments.bench.controller import controller_stats
from experiments.mtd_longrun_watch import LoadSampler, ReachWatch, read_flow_count
from experiments.mtd_longrun_watch import flow_count as flow_count  # re-exported
from experiments.mtd_sweep import CpuReading, controller_cpu, parse_intervals
from experiments.recon_attackers import MODULES, model_trial, outcome_path
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.defenses import nat_hop_log, rhm_hop_log
from lab.lifecycle import Lab
from reporting import plotting
from reporting.bundle import read_csv

POOL_BITS_LO, POOL_BITS_HI = 8, 16
_CONDITION = re.compile(r"^pool(\d+)_hop([0-9.]+)s(?:_decoys(\d+))?$")
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


def extend_curve(rows: list[dict[str, Any]], window_s: float, ran_for_s: float,
                 stopped: bool, step_s: float = 1.0) -> list[dict[str, Any]]:
    """``persistent_progress`` rows (``t_s`` every ``step_s``) carried on to ``window_s``:
    each added row repeats the last one's counts (nothing can be found or reached after a run
    that has ended, and after an early stop every PLC already was). Every row gets
    ``extended``: 1 when the run stopped early and the row is past ``ran_for_s`` (not
    observed, carried), else 0."""
    out = [dict(r) for r in rows]
    if out:
        last = out[-1]
        n = 1
        while float(last["t_s"]) + n * step_s <= window_s + 1e-9:
            out.append({**last, "t_s": round(float(last["t_s"]) + n * step_s, 6)})
            n += 1
    for r in out:
        r["extended"] = int(stopped and float(r["t_s"]) > ran_for_s)
    return out


def _unix_s(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def run_span(outcome: dict[str, Any], all_reached_unix_s: float | None,
             window_s: float) -> dict[str, float]:
    """How much of the window ran, from the attacker's outcome: ``window_end_s``,
    ``ran_for_s`` (attack start to the attacker's end), ``all_reached_s`` (the PLC logs'
    last first reach; NaN: not every PLC) and ``stopped_early_s`` (when the attacker took the
    stop, NaN: it ran its window), all from the attack's start."""
    t0 = float(outcome.get("attack_start_unix_s") or 0.0)
    end = _unix_s(str(outcome.get("ended_at") or ""))
    stops = [float(r["stopped_early_unix_s"]) for r in outcome.get("rounds", [])
             if r.get("stopped_early_unix_s") is not None]
    nan = math.nan
    return {"window_end_s": window_s,
            "ran_for_s": end - t0 if t0 and end is not None else nan,
            "all_reached_s": all_reached_unix_s - t0 if t0 and all_reached_unix_s else nan,
            "stopped_early_s": stops[0] - t0 if t0 and stops else nan}


# --- I/O ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Watched:
    """What :func:`watch_load` measured: the controller's CPU over the run, each switch's
    flows at its end, the reach watch, the load samples."""

    reading: CpuReading = dataclasses.field(default_factory=CpuReading)
    flows: dict[str, int] = dataclasses.field(default_factory=dict)
    reach: ReachWatch | None = None
    load_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def watch_load(lab: Lab, watched: Watched, raw: Path, stop: bool) -> Iterator[None]:
    """While the body runs: the controller's CPU, its load every 5 s, and the PLC logs (the
    attacker told to stop once every PLC is reached, when ``stop``); then each switch's flow
    count (before the lab tears down; a switch whose count cannot be read is left out)."""
    attacker = lab.plan.attacker
    assert attacker is not None
    watched.reach = ReachWatch(lab, raw, lab.plan, attacker.ip,
                               f"{attacker.name}:{MODULES['persistent']}", stop)
    with LoadSampler(lab) as sampler, watched.reach, controller_cpu(lab, watched.reading):
        yield
    watched.load_rows = sampler.rows
    for sw in lab.plan.switches:
        count = read_flow_count(lab.cfg.switch_prefix + sw.name)
        if count is not None:
            watched.flows[sw.name] = count


def trial(ctx: TrialContext) -> TrialResult:
    """One persistent-attacker window at this condition's pool size, hop interval and decoys
    (ended early once every PLC is reached, unless ``stop_when_all_reached`` is off)."""
    cond = parse_condition(ctx.condition)
    bits, interval_s = cond.pool_bits, cond.hop_interval_s
    cfg = ctx.config
    plan = widen_pool(ctx.plan, 32 - bits)
    run_ctx = dataclasses.replace(ctx, plan=plan, config={
        **cfg, "hop_interval_s": interval_s, "decoys": cond.decoys})
    raw = ctx.raw_dir
    stop = bool(cfg.get("stop_when_all_reached", True))
    w = Watched()
    result = model_trial(run_ctx, cfg["defense"], "persistent",
                         watch=lambda lab: watch_load(lab, w, raw, stop))
    reading, flows = w.reading, w.flows
    metrics = dict(result.metrics)
    if not math.isnan(reading.pct):
        metrics["controller_cpu_pct"] = reading.pct
    if flows:
        metrics["flow_table_flows"] = float(sum(flows.values()))
    metrics["pool_addresses"] = float(len(plan.virtual_pool))
    out_path = outcome_path(raw, "persistent")
    outcome = json.loads(out_path.read_text()) if out_path.exists() else {}
    if outcome:
        hops = hoplog.read([rhm_hop_log(raw), *(nat_hop_log(raw, h.name) for h in plan.protected)])
        spans = mtd.address_spans(plan, hops, cfg["defense"])
        metrics["attack_decoys_met"] = float(decoys_met(outcome.get("replies", []), spans,
                                                        frozenset(plan.virtual_pool)))
    log = raw / "controller.log"
    if log.exists():
        metrics.update(load_metrics(controller_stats(log.read_text(errors="replace"))))
    span = run_span(outcome, w.reach.all_reached_unix_s if w.reach else None,
                    float(cfg["window_s"]))
    stopped = not math.isnan(span["stopped_early_s"])
    metrics.update({k: v for k, v in span.items() if not math.isnan(v)})
    tables = dict(result.tables)
    validity = dict(result.validity)
    progress = tables.get("persistent_progress", [])
    if progress:
        tables["persistent_progress"] = extend_curve(progress, float(cfg["window_s"]),
                                                     span["ran_for_s"], stopped)
    if stopped:  # the PLC logs' "all reached" must be the curve's: it ends at every PLC
        validity["early_stop_matches_curve"] = bool(progress) and int(
            progress[-1]["plcs_reached"]) == len(plan.hosts_with_role("plc"))
    tables["controller_load"] = [{"pool_bits": bits, "hop_interval_s": interval_s,
                                  "decoys": cond.decoys,
                                  "pool_addresses": len(plan.virtual_pool),
                                  "stop_when_all_reached": int(stop), **span,
                                  "controller_cpu_pct": reading.pct,
                                  "controller_cpu_s": reading.cpu_s, "wall_s": reading.wall_s,
                                  **{f"flows_{k}": v for k, v in flows.items()}}]
    t0 = float(outcome.get("attack_start_unix_s") or 0.0)
    tables["controller_load_over_time"] = [
        {"pool_bits": bits, "hop_interval_s": interval_s, "decoys": cond.decoys,
         "t_s": round(r["t_unix_s"] - t0, 3) if t0 else math.nan,
         **{k: v for k, v in r.items() if k != "t_unix_s"}} for r in w.load_rows]
    return dataclasses.replace(result, metrics=metrics, tables=tables, validity=validity)


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


def stop_times(rows: list[dict[str, str]]) -> dict[str, float]:
    """``persistent_progress.csv`` → condition → the last observed second before the curve
    is carried (the first ``extended`` row's ``t_s`` minus one step), the latest over the
    trials that stopped (from there on every stopped trial's line is carried); conditions that
    ran their whole window (or bundles from before the column) are absent."""
    out: dict[str, float] = {}
    prev: dict[tuple[str, str], float] = {}
    seen: set[tuple[str, str]] = set()
    for r in rows:
        key = (r.get("condition", ""), r.get("trial", ""))
        try:
            t = float(r["t_s"])
        except (KeyError, ValueError):
            continue
        if r.get("extended") == "1" and key not in seen:
            seen.add(key)
            out[key[0]] = max(out.get(key[0], -math.inf), prev.get(key, t))
        prev[key] = t
    return out


def _cumulative_figure(bundle: Path) -> tuple[str, str] | None:
    rows = read_csv(bundle / "persistent_progress.csv")
    curves = reached_curves(rows)
    if not curves:
        return None
    stops = stop_times(rows)
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
        if cond.name in stops:
            t_stop = stops[cond.name]
            y = means[max(i for i, t in enumerate(ts) if t <= t_stop)] if ts[0] <= t_stop \
                else means[0]
            ax.plot([t_stop], [y], marker="x", color=color, markersize=7)
    ax.set_xlabel("time since the attack started (s)")
    ax.set_ylabel("PLCs reached (cumulative, mean over trials)")
    ax.set_title(f"Persistent attacker vs {config.get('defense', 'rhm')}: PLCs reached")
    ax.legend(fontsize=8)
    caption = ("Distinct PLCs the persistent attacker reached (a request the PLC's own log "
               "shows answered) by each second of its window, mean over trials, one line per "
               "virtual pool size, hop interval and decoy count (dashed: with decoys).")
    if stops:
        caption += (" A cross (x): the last of the condition's trials that stopped early "
                    "(every PLC reached, PLC logs) stopped there; from it to the window's end "
                    "the stopped trials are carried flat at their maximum, not observed.")
    return plotting.save(fig, bundle, "cumulative_reached"), caption


def _load_figure(bundle: Path) -> tuple[str, str] | None:
    path = bundle / "controller_load_over_time.csv"
    rows = read_csv(path) if path.exists() else []  # bundles from before the table have none
    series: dict[str, dict[str, list[tuple[float, float, float]]]] = defaultdict(
        lambda: defaultdict(list))  # condition -> trial -> samples
    for r in rows:
        try:
            series[r["condition"]][r.get("trial", "")].append((
                float(r["t_s"]), float(r["controller_cpu_pct"]), float(r["flows_total"])))
        except (KeyError, ValueError):
            continue
    if not series:
        return None
    with plotting.plt.rc_context(plotting.STYLE):
        fig, (ax_cpu, ax_flows) = plotting.plt.subplots(2, 1, sharex=True, figsize=(7.0, 5.6))
    conds = sorted(parse_condition(name) for name in series)
    cells = sorted({(c.pool_bits, c.hop_interval_s) for c in conds})
    for cond in conds:
        style = {"color": f"C{cells.index((cond.pool_bits, cond.hop_interval_s)) % 10}",
                 "linestyle": "--" if cond.decoys else "-", "linewidth": 1.0}
        for i, trial in enumerate(sorted(series[cond.name])):  # one line per trial
            pts = sorted(series[cond.name][trial])
            ax_cpu.plot([p[0] for p in pts], [p[1] for p in pts],
                        label=cond.label if i == 0 else None, **style)
            ax_flows.plot([p[0] for p in pts], [p[2] for p in pts], **style)
    ax_cpu.set_ylabel("controller CPU (% of one core)")
    ax_flows.set_ylabel("flows (all switches)")
    ax_flows.set_xlabel("time since the attack started (s; negative: the lab coming up)")
    ax_cpu.legend(fontsize=6, ncol=2)
    return (plotting.save(fig, bundle, "controller_load_over_time"),
            "The controller process's CPU share over each 5 s period and the flows in all "
            "switches at each sample, one line per condition and trial (dashed: with "
            "decoys). A trial that stopped early ends where it stopped.")


def plot(bundle: Path) -> list[tuple[str, str]]:
    """Cumulative PLCs reached against time, one line per (pool size, hop interval, decoys):
    one colour per pool size and hop interval, dashed with decoys, a cross where a condition
    stopped early; the controller's CPU and flows over time."""
    return [f for f in (_cumulative_figure(bundle), _load_figure(bundle)) if f is not None]


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
    Param("stop_when_all_reached", "bool", True, "end a condition's window once the PLCs' "
          "own logs show every PLC reached (the curve is then carried flat to the window's "
          "end, marked extended; CPU and flows are over the part that ran)"),
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
