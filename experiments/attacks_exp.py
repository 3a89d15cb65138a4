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

This module is the options and the trial; the figures are computed in
:mod:`experiments.attacks_scoring` (pure) and drawn in :mod:`experiments.attacks_plots`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.mitm_tamper import parse_tamper
from attacks.tank_impact import tank_impact
from common.cli import wait_until
from common.errors import LabError, UserError
from common.groundtruth import GroundTruthRow, read_ground_truth_file
from common.netstate import parse_iptables_save
from common.plan import AddressPlan
from experiments import attacks_scoring as scoring
from experiments.attacks_plots import plot as plot  # the experiment's plot (from_module)
from experiments.attacks_scoring import CONDITIONS
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import start_ics, stop_hmi
from lab.hostrun import run_in_host
from lab.lifecycle import Lab, running_lab
from plc.metrics import RequestRecord, records_from_csv
from plc.registers import TANK_MAP

ATTACK_MODULES = {"inject": "attacks.inject", "mitm": "attacks.mitm",
                  "synflood": "attacks.synflood", "fuzz": "attacks.modbus_fuzz"}
LEVEL = TANK_MAP.get("level")
HMI_READY_TIMEOUT_S = 20.0
ATTACK_GRACE_S = 40.0  # start-up, restoration and verification beyond the window


# --- options and attack arguments ----------------------------------------------------------
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
        out[f"{host}:{ip}"] = scoring.neighbor_mac(text, ip)
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
                  scoring.arp_restored(arp, expected_macs), timeline)


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
        fig = scoring.window_figures(records, plc, win_start, win_end)
        window_rows.append({"plc": plc, "window_start_t_s": round(win_start, 4),
                            "window_end_t_s": round(win_end, 4), **fig})
        prefix = "hmi" if plc == target else f"hmi_{plc}"
        for key in ("availability", "latency_p50_ms", "latency_p95_ms", "longest_outage_s"):
            metrics[f"{prefix}_{key}"] = fig[key]

    truth = _truth(state_csv)
    attack_plc_s = clocks.plc_at(start_mono)
    observed = [r for r in truth if r["t_s"] <= clocks.plc_at(observe_end_mono)]
    try:
        metrics.update(scoring.deviation_metrics(tank_impact(observed, attack_plc_s)))
    except ValueError as exc:
        raise LabError(f"no ground truth around the attack: {exc}") from None
    readings = scoring.hmi_readings(scoring.window_records(records, win_start, win_end),
                                    target, "read_input_registers", LEVEL.address,
                                    LEVEL.resolution)
    metrics["hmi_false_level_share"] = scoring.false_reading_share(
        readings, [(r["t_s"], r["level_cm"]) for r in truth], clocks.plc_s - clocks.hmi_s)
    metrics.update(scoring.attacker_metrics(cond, outcome))

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


EXPERIMENT = Experiment.from_module(
    __name__, "attacks",
    "each attack (inject, mitm, synflood, fuzz) vs. a no-attack baseline: "
    "HMI availability and latency, process deviation, attacker gains, clean-up")
