"""``attacks``: each attack of the library against the default ICS, next to a no-attack
baseline in the same run.

Conditions (``--attacks``, default all): ``baseline`` (nothing happens), ``inject`` (Modbus
command injection: auto mode off, valve closed, pump on, held for the window), ``mitm``
(ARP-spoofing man in the middle between the HMI and PLC 1, optionally tampering the level in
the HMI's reads), ``synflood`` (spoofed SYN flood on PLC 1's port 502) and ``fuzz`` (hostile
Modbus frames to PLC 1). Every trial runs every condition on a fresh network, paired on the
seed. The target is always the first PLC (the tank).

Per condition, over the attack window (from the attack's launch to its exit, on the HMI's
clock; the baseline sleeps ``window_s``): HMI availability, latency p50/p95 and longest
outage per PLC; the tank's deviation from its band in the ground truth (the PLC's state
CSV, never the attacker's view; the inject condition is observed on until the tank
overflows or ``inject_observe_s`` ends); the share of the HMI's level readings that were
false against the ground truth; what the attacker got (exchanges seen, writes accepted,
packets or frames sent). Validity: the attack exited cleanly, the attacker's iptables rules
are as before, and the HMI's and PLC 1's ARP entries for each other hold the real MACs
after the attack; a condition failing one is invalid, not scored.
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.mitm_tamper import parse_tamper
from attacks.tank_impact import TankImpact, tank_impact
from common.cli import wait_until
from common.errors import LabError, UserError
from common.groundtruth import GroundTruthRow, read_ground_truth_file
from common.netstate import parse_iptables_save
from common.plan import AddressPlan
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import start_ics, stop_hmi
from lab.hostrun import run_in_host
from lab.lifecycle import Lab, running_lab
from plc.metrics import RequestRecord, plc_metrics, records_from_csv
from plc.registers import TANK_MAP
from reporting import plotting
from reporting.bundle import read_csv
from reporting.stats import summarize

CONDITIONS = ("baseline", "inject", "mitm", "synflood", "fuzz")
ATTACK_MODULES = {"inject": "attacks.inject", "mitm": "attacks.mitm",
                  "synflood": "attacks.synflood", "fuzz": "attacks.modbus_fuzz"}
LEVEL = TANK_MAP.get("level")
HMI_READY_TIMEOUT_S = 20.0
ATTACK_GRACE_S = 40.0  # start-up, restoration and verification beyond the window
FALSE_READING_TOLERANCE_CM = 1.0
TRUTH_SLACK_S = 0.5  # clock alignment error allowed between HMI and PLC records



# --- pure parts --------------------------------------------------------------------------
def parse_conditions(text: str) -> list[str]:
    """``--attacks`` text → conditions in canonical order; UserError names an unknown one."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UserError("--attacks: name at least one of " + ", ".join(CONDITIONS))
    if "all" in items:
        return list(CONDITIONS)
    for s in items:
        if s not in CONDITIONS:
            raise UserError(f"--attacks: unknown condition {s!r} (choose from "
                            f"{', '.join(CONDITIONS)}, or all)")
    return [c for c in CONDITIONS if c in items]


def check_tamper(text: str) -> None:
    """``--mitm-tamper``: empty, or what ``attacks.mitm --tamper`` accepts."""
    if text:
        try:
            parse_tamper(text)
        except UserError as exc:
            raise UserError(f"--mitm-tamper: {exc}") from None


def conditions(cfg: dict[str, Any]) -> list[str]:
    return parse_conditions(cfg["attacks"])


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """UserError unless the topology has an HMI, PLCs and an attacker (before anything is
    created)."""
    if not plan.hosts_with_role("plc") or not plan.hosts_with_role("hmi") or (
            plan.attacker is None):
        raise UserError(f"experiment attacks needs a topology with an HMI, PLCs and an "
                        f"attacker (ics), not {plan.name}")


PARAMS = (
    Param("attacks", "str", "all", "conditions to run, each trial under each: "
          "comma-separated from " + ", ".join(CONDITIONS) + ", or all",
          parse=parse_conditions),
    Param("window_s", "float", 15.0, "attack window: how long each attack runs (the "
          "baseline sleeps as long)", 2, 300, quick=5.0),
    Param("warmup_s", "float", 4.0, "normal operation before the attack", 0, 300, quick=2.0),
    Param("inject_observe_s", "float", 30.0, "inject: watch the tank this long from the "
          "attack's start, or until it overflows", 1, 600, quick=16.0),
    Param("mitm_tamper", "str", "level=1999", "mitm: REGISTER=VALUE falsified in the "
          "HMI's reads (empty: eavesdrop only)", parse=check_tamper),
    Param("flood_rate_pps", "float", 20000.0, "synflood: SYNs per second", 1, 100000),
    Param("fuzz_rate_fps", "float", 2000.0, "fuzz: frames per second", 1, 100000),
    Param("plc_cycle_ms", "int", 100, "PLC scan cycle", 10, 10000),
    Param("hmi_period_ms", "int", 100, "HMI polling period", 10, 60000),
    Param("hmi_timeout_ms", "int", 500, "HMI request time-out (a later answer is a miss)",
          10, 60000),
)


def attack_args(condition: str, cfg: Mapping[str, Any], plan: AddressPlan, seed: int
                ) -> list[str]:
    """The attack module's arguments for ``condition`` (no --plan/--out); [] for baseline.

    The target is the plan's first PLC; the MITM's victims are the HMI and that PLC.
    """
    if condition == "baseline":
        return []
    target = plan.hosts_with_role("plc")[0].ip
    window = f"{cfg['window_s']:g}"
    if condition == "inject":
        return ["--targets", target, "--pump-on", "--auto-off", "--valve-close",
                "--hold-s", window, "--period-s", "1"]
    if condition == "mitm":
        hmi = plan.hosts_with_role("hmi")[0].ip
        args = ["--targets", f"{hmi},{target}", "--duration-s", window]
        return args + (["--tamper", cfg["mitm_tamper"]] if cfg["mitm_tamper"] else [])
    if condition == "synflood":
        return ["--targets", target, "--rate-pps", f"{cfg['flood_rate_pps']:g}",
                "--duration-s", window, "--seed", str(seed)]
    if condition == "fuzz":
        frames = max(1, math.ceil(cfg["fuzz_rate_fps"] * cfg["window_s"]))
        return ["--targets", target, "--frames", str(frames), "--rate-fps",
                f"{cfg['fuzz_rate_fps']:g}", "--max-s", window, "--half-open", "50",
                "--seed", str(seed)]
    raise ValueError(f"unknown condition {condition!r}")


def window_records(records: Iterable[RequestRecord], start_t_s: float, end_t_s: float
                   ) -> list[RequestRecord]:
    """The HMI records whose request started in ``[start_t_s, end_t_s)`` (HMI clock)."""
    return [r for r in records if start_t_s <= r.t_s < end_t_s]


def window_figures(records: Sequence[RequestRecord], plc: str, start_t_s: float,
                   end_t_s: float) -> dict[str, float]:
    """HMI figures of ``plc`` over a window: polls, availability, latency p50/p95, outage.

    A window without polls has availability NaN (not 0: nothing was asked).
    """
    m = plc_metrics(plc, window_records(records, start_t_s, end_t_s))
    return {"polls": float(m.polls), "availability": m.availability,
            "latency_p50_ms": m.latency_p50_ms, "latency_p95_ms": m.latency_p95_ms,
            "longest_outage_s": m.longest_outage_s, "timeouts": float(m.timeouts),
            "connection_errors": float(m.connection_errors)}


def hmi_readings(records: Iterable[RequestRecord], plc: str, function: str, address: int,
                 resolution: float) -> list[tuple[float, float]]:
    """(t_s, engineering value) of one register in every answered HMI read that covers it.

    address: the register's address; reads start at ``r.address`` and hold ``r.count``
    values, space-separated raw integers in ``r.values``.
    """
    out = []
    for r in records:
        if r.plc != plc or r.function != function or r.outcome != "ok" or not r.values:
            continue
        index = address - r.address
        values = r.values.split()
        if 0 <= index < len(values):
            try:
                out.append((r.t_s, int(values[index]) * resolution))
            except ValueError:
                continue
    return out


def false_reading_share(readings: Sequence[tuple[float, float]],
                        truth: Sequence[tuple[float, float]], offset_s: float,
                        tolerance: float = FALSE_READING_TOLERANCE_CM,
                        slack_s: float = TRUTH_SLACK_S) -> float:
    """Share of readings no ground-truth value near their time explains.

    readings: (HMI time, value the HMI was shown). truth: (PLC time, true value), sorted by
    time. offset_s: PLC clock minus HMI clock. A reading is true when some truth row within
    ``slack_s`` of its PLC time is within ``tolerance`` of it; readings with no truth row in
    reach are not counted. NaN when none is counted.
    """
    times = [t for t, _v in truth]
    false = counted = 0
    for t_hmi, value in readings:
        t = t_hmi + offset_s
        near = truth[bisect_left(times, t - slack_s):bisect_right(times, t + slack_s)]
        if not near:
            continue
        counted += 1
        if min(abs(value - v) for _t, v in near) > tolerance:
            false += 1
    return false / counted if counted else math.nan


def deviation_metrics(impact: TankImpact) -> dict[str, float]:
    """Scalar tank metrics from an impact: excursion over/under the band and times to it.

    Times that never happened are left out (a metric is a number, not "never").
    """
    out = {
        "tank_max_over_high_sp_cm": max(0.0, impact.max_level_cm - impact.high_sp_cm),
        "tank_max_under_low_sp_cm": max(0.0, impact.low_sp_cm - impact.min_level_cm),
        "tank_left_band": float(impact.left_band),
        "tank_spilled_l": impact.spilled_l,
        "tank_observed_s": impact.observed_s,
    }
    for key, value in (("tank_above_high_sp_after_s", impact.above_high_sp_after_s),
                       ("tank_alarm_high_high_after_s", impact.alarm_high_high_after_s),
                       ("tank_overflow_after_s", impact.alarm_overflow_after_s)):
        if value is not None:
            out[key] = value
    return out


def attacker_metrics(condition: str, outcome: Mapping[str, Any]) -> dict[str, float]:
    """What the attacker learned or changed, from its outcome JSON."""
    if condition == "inject":
        return {"inject_writes_accepted": float(outcome.get("writes_ok", 0)),
                "inject_writes_refused": float(outcome.get("writes_refused", 0))}
    if condition == "mitm":
        tamper = outcome.get("tamper") or {}
        return {"mitm_modbus_exchanges": float(outcome.get("exchange_count", 0)),
                "mitm_frames_intercepted": float(sum(
                    (outcome.get("intercepted_frames") or {}).values())),
                "mitm_responses_tampered": float(tamper.get("responses_rewritten", 0))}
    if condition == "synflood":
        flood = outcome.get("flood") or {}
        return {"flood_packets_sent": float(flood.get("packets", 0)),
                "flood_rate_pps": float(flood.get("rate_pps", 0.0))}
    if condition == "fuzz":
        barrage = outcome.get("barrage") or {}
        return {"fuzz_frames_sent": float(barrage.get("frames", 0)),
                "fuzz_connections": float(barrage.get("connections", 0))}
    return {}


_LLADDR = re.compile(r"\blladdr\s+([0-9a-fA-F:]{17})")


def neighbor_mac(ip_neigh_text: str, ip: str) -> str | None:
    """The MAC an ``ip neigh show`` output maps ``ip`` to; None when absent or unresolved."""
    for line in ip_neigh_text.splitlines():
        fields = line.split()
        if fields and fields[0] == ip:
            m = _LLADDR.search(line)
            return m.group(1).lower() if m else None
    return None


def arp_restored(entries: Mapping[str, str | None], expected: Mapping[str, str]) -> bool:
    """Every entry (victim:ip → MAC or None) is absent or the real MAC ``expected[key]``."""
    return all(mac is None or mac == expected[key].lower() for key, mac in entries.items())


# --- I/O ---------------------------------------------------------------------------------
@dataclass
class Clocks:
    """The HMI's and the PLC's clocks tied to this process's monotonic clock at one moment."""

    mono_s: float
    hmi_s: float
    plc_s: float

    def hmi_at(self, mono_s: float) -> float:
        return self.hmi_s + (mono_s - self.mono_s)

    def plc_at(self, mono_s: float) -> float:
        return self.plc_s + (mono_s - self.mono_s)


def _hmi_records(path: Path) -> list[RequestRecord]:
    try:
        with open(path, newline="") as f:
            return records_from_csv(f)
    except OSError:
        return []


def _truth(path: Path) -> list[GroundTruthRow]:
    try:
        return read_ground_truth_file(path)
    except OSError:
        return []


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    if not wait_until(predicate, timeout_s, interval_s=0.1):
        raise LabError(f"{what} within {timeout_s:g} s")


def _read_clocks(hmi_csv: Path, state_csv: Path) -> Clocks:
    """Both clocks now: the last HMI request's and the last ground-truth row's ``t_s``."""
    mono = time.monotonic()
    hmi = _hmi_records(hmi_csv)
    truth = _truth(state_csv)
    if not hmi or not truth:
        raise LabError("no HMI records or ground-truth rows to read the clocks from")
    return Clocks(mono, max(r.t_s for r in hmi), truth[-1]["t_s"])


def _iptables(lab: Lab, host: str) -> dict[str, str] | None:
    res = lab.run(host, ["iptables-save"], timeout_s=10)
    return parse_iptables_save(res.stdout) if res.returncode == 0 else None


def _arp_entries(lab: Lab, plan: AddressPlan, pairs: Sequence[tuple[str, str]]
                 ) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for host, peer in pairs:
        ip = plan.host(peer).ip
        text = lab.run(host, ["ip", "neigh", "show", ip], timeout_s=10).stdout
        out[f"{host}:{ip}"] = neighbor_mac(text, ip)
    return out


def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    cond = ctx.condition or "baseline"
    plan = ctx.plan
    check(cfg, plan)
    assert plan.attacker is not None
    target, hmi = plan.hosts_with_role("plc")[0], plan.hosts_with_role("hmi")[0]
    attacker = plan.attacker
    raw = ctx.raw_dir
    plan_path = raw / "plan.json"
    plan.save(plan_path)
    outcome_path = raw / f"{cond}_outcome.json"
    pairs = [(hmi.name, target.name), (target.name, hmi.name)]
    expected_macs = {f"{h}:{plan.host(p).ip}": plan.host(p).mac for h, p in pairs}
    ctx.stage(f"building the network ({cond})")
    with running_lab(ctx.lab_config()) as lab:
        ctx.stage("starting PLCs and HMI")
        ics = start_ics(lab, raw, plc_cycle_ms=cfg["plc_cycle_ms"],
                        hmi_period_ms=cfg["hmi_period_ms"],
                        hmi_timeout_ms=cfg["hmi_timeout_ms"])
        dev = next(d for d in ics.plcs if d.name == target.name)
        assert ics.hmi_csv is not None
        hmi_csv = ics.hmi_csv
        _wait_for(lambda: {r.plc for r in _hmi_records(hmi_csv)
                           if r.outcome == "ok"} >= {d.name for d in ics.plcs},
                  HMI_READY_TIMEOUT_S, "the HMI got no answer from every PLC")
        if cfg["warmup_s"]:
            ctx.stage(f"normal operation for {cfg['warmup_s']:g} s")
            time.sleep(cfg["warmup_s"])
        rules_before = _iptables(lab, attacker.name)
        clocks = _read_clocks(hmi_csv, dev.state_csv)
        start_mono = time.monotonic()
        exit_ok = True
        outcome: dict[str, Any] = {}
        if cond == "baseline":
            ctx.stage(f"no attack for {cfg['window_s']:g} s")
            time.sleep(cfg["window_s"])
        else:
            ctx.stage(f"attack: {cond} for {cfg['window_s']:g} s")
            run = run_in_host(lab, attacker.name, ATTACK_MODULES[cond], [
                "--plan", str(plan_path), "--out", str(outcome_path),
                *attack_args(cond, cfg, plan, ctx.seed)], f"{cond}.log",
                cfg["window_s"] + ATTACK_GRACE_S, what=cond)
            run.check_finished()
            exit_ok = run.code == 0
            outcome = run.outcome(outcome_path)
        end_mono = time.monotonic()
        if cond == "inject":
            ctx.stage("watching the tank until it overflows")

            def overflowed() -> bool:
                if any(r.get("alarm_overflow", 0) >= 1 for r in _truth(dev.state_csv)[-5:]):
                    return True
                if dev.proc.poll() is not None:
                    raise LabError(f"PLC {dev.name} died during the attack")
                return False

            wait_until(overflowed, start_mono + cfg["inject_observe_s"] - time.monotonic(),
                       interval_s=0.2)
        observe_end_mono = time.monotonic()
        stop_hmi(lab, ics)
        rules_after = _iptables(lab, attacker.name)
        arp = _arp_entries(lab, plan, pairs)
        lab.check_healthy()
        timeline = dict(lab.timeline)
    return _score(ctx, cond, clocks, start_mono, end_mono, observe_end_mono, hmi_csv,
                  dev.state_csv, [d.name for d in ics.plcs], outcome, exit_ok,
                  rules_before is not None and rules_before == rules_after,
                  arp_restored(arp, expected_macs), timeline)


def _score(ctx: TrialContext, cond: str, clocks: Clocks, start_mono: float, end_mono: float,
           observe_end_mono: float, hmi_csv: Path, state_csv: Path, plc_names: list[str],
           outcome: dict[str, Any], exit_ok: bool, iptables_ok: bool, arp_ok: bool,
           timeline: dict[str, float]) -> TrialResult:
    target = plc_names[0]
    records = _hmi_records(hmi_csv)
    win_start, win_end = clocks.hmi_at(start_mono), clocks.hmi_at(end_mono)
    metrics: dict[str, float] = {"attack_window_s": end_mono - start_mono}
    window_rows = []
    for plc in plc_names:
        fig = window_figures(records, plc, win_start, win_end)
        window_rows.append({"plc": plc, "window_start_t_s": round(win_start, 4),
                            "window_end_t_s": round(win_end, 4), **fig})
        prefix = "hmi" if plc == target else f"hmi_{plc}"
        for key in ("availability", "latency_p50_ms", "latency_p95_ms", "longest_outage_s"):
            metrics[f"{prefix}_{key}"] = fig[key]

    truth = _truth(state_csv)
    attack_plc_s = clocks.plc_at(start_mono)
    observed = [r for r in truth if r["t_s"] <= clocks.plc_at(observe_end_mono)]
    try:
        metrics.update(deviation_metrics(tank_impact(observed, attack_plc_s)))
    except ValueError as exc:
        raise LabError(f"no ground truth around the attack: {exc}") from None
    readings = hmi_readings(window_records(records, win_start, win_end), target,
                            "read_input_registers", LEVEL.address, LEVEL.resolution)
    metrics["hmi_false_level_share"] = false_reading_share(
        readings, [(r["t_s"], r["level_cm"]) for r in truth], clocks.plc_s - clocks.hmi_s)
    metrics.update(attacker_metrics(cond, outcome))

    warmup_s = ctx.config["warmup_s"]
    tank_rows = [{"t_rel_s": round(r["t_s"] - attack_plc_s, 3), "level_cm": r["level_cm"],
                  "level_high_sp_cm": r["level_high_sp_cm"],
                  "level_low_sp_cm": r["level_low_sp_cm"],
                  "attack_end_rel_s": round(end_mono - start_mono, 3)}
                 for r in observed if r["t_s"] >= attack_plc_s - warmup_s]
    validity = {"attack_exit_ok": exit_ok, "attacker_iptables_restored": iptables_ok,
                "victim_arp_restored": arp_ok}
    return TrialResult(
        tables={"hmi_window": window_rows, "tank": tank_rows},
        metrics={k: v for k, v in metrics.items() if not math.isnan(v)},
        validity=validity, timeline=timeline)


# --- plots (from the CSVs only) ------------------------------------------------------------
def plot(bundle: Path) -> list[tuple[str, str]]:
    return plot_hmi_bars(bundle) + plot_tank(bundle)


def _metric_values(bundle: Path) -> dict[str, dict[str, list[float]]]:
    """condition → metric → values of valid trials."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    path = bundle / "metrics.csv"
    if not path.exists():
        return {}
    for r in read_csv(path):
        if r.get("valid") in ("false", "False") or not r["value"]:
            continue
        out[r.get("condition") or "baseline"][r["metric"]].append(float(r["value"]))
    return out


def plot_hmi_bars(bundle: Path) -> list[tuple[str, str]]:
    values = _metric_values(bundle)
    conds = [c for c in CONDITIONS if c in values] + sorted(set(values) - set(CONDITIONS))
    if not conds:
        return []
    import matplotlib.pyplot as plt

    with plt.rc_context(plotting.STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, metric, label in ((axes[0], "hmi_availability", "HMI availability (share)"),
                              (axes[1], "hmi_latency_p95_ms", "HMI latency p95 (ms)")):
        sums = [summarize(values[c].get(metric, [])) for c in conds]
        means = [0.0 if math.isnan(s.mean) else s.mean for s in sums]
        errs = [0.0 if math.isnan(s.ci95) else s.ci95 for s in sums]
        ax.bar(conds, means, yerr=errs, capsize=4,
               color=[plotting.color(c) for c in conds])
        for i, s in enumerate(sums):
            if s.n == 0:
                ax.annotate("n/a", (i, 0), ha="center", va="bottom", fontsize=7)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelsize=8)
        if metric == "hmi_availability":
            ax.set_ylim(0, 1.1)
    fig.suptitle("HMI during the attack window on the target PLC (mean ± 95% CI)",
                 fontsize=10)
    return [(plotting.save(fig, bundle, "hmi_per_attack"),
             "HMI availability (share of polls of the target PLC answered in time) and "
             "latency p95 during each attack's window, next to the no-attack baseline over "
             "the same window length; mean over valid trials, 95% CI error bars.")]


def plot_tank(bundle: Path) -> list[tuple[str, str]]:
    path = bundle / "tank.csv"
    if not path.exists():
        return []
    rows = read_csv(path)
    first = min((int(r["trial"]) for r in rows), default=None)
    series: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if int(r["trial"]) == first and r.get("condition") in ("baseline", "inject"):
            series[r["condition"]].append(r)
    if not series:
        return []
    fig, ax = plotting.figure()
    for cond in ("baseline", "inject"):
        pts = series.get(cond)
        if not pts:
            continue
        xs = [float(r["t_rel_s"]) for r in pts]
        ax.plot(xs, [float(r["level_cm"]) for r in pts], label=f"{cond}: level",
                color=plotting.color(cond))
    # The band as it stood before the attack, across the longer series (the injection
    # writes no setpoint, so both series share it).
    longest = max(series.values(), key=len)
    xs = [float(r["t_rel_s"]) for r in longest]
    ax.plot(xs, [float(longest[0]["level_high_sp_cm"])] * len(xs), linestyle="--",
            color="black", linewidth=1, label="high setpoint")
    ax.plot(xs, [float(longest[0]["level_low_sp_cm"])] * len(xs), linestyle=":",
            color="black", linewidth=1, label="low setpoint")
    end = next((float(r["attack_end_rel_s"]) for r in series.get("inject", [])), None)
    if end is not None:
        ax.axvspan(0.0, end, color="red", alpha=0.08, label="injection held")
    ax.axvline(0.0, color="red", linewidth=0.8)
    ax.set_xlabel("time from the attack's start (s, PLC clock)")
    ax.set_ylabel("tank level (cm)")
    ax.set_title(f"Tank level, baseline vs. command injection (trial {first}, ground truth)")
    ax.legend(fontsize=7, loc="upper left")
    return [(plotting.save(fig, bundle, "tank_inject_vs_baseline"),
             "Ground-truth tank level logged by PLC 1 in the first trial, without attack and "
             "under Modbus command injection (pump forced on, valve closed, auto mode off "
             "from t = 0; shaded while the writes were held), with the high and low "
             "setpoints of the band.")]


EXPERIMENT = Experiment(
    name="attacks",
    description="each attack (inject, mitm, synflood, fuzz) vs. a no-attack baseline: "
                "HMI availability and latency, process deviation, attacker gains, clean-up",
    params=PARAMS,
    trial=trial,
    plot=plot,
    conditions=conditions,
    check=check,
)
