"""``ics``: baseline operation of the industrial control system.

Both PLCs run their processes (tank, pressure loop) while the HMI polls them every period;
halfway through, the operator lowers the tank's high setpoint (a Modbus write from the HMI).
Recorded: HMI availability, latency percentiles, longest outage and reconnects per PLC; the
ground-truth process state of each PLC every scan cycle. Plots: process trends, HMI latency
over time, HMI latency CDF.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common.errors import LabError, UserError
from common.groundtruth import TIME_COLUMN, read_ground_truth_file
from common.plan import AddressPlan
from experiments.figures import cdf_figure, finish
from experiments.runner import TrialContext
from experiments.spec import Experiment, Param, TrialResult
from lab.devices import hmi_results, start_ics, stop_hmi
from lab.lifecycle import running_lab
from lab.processes import exit_description
from plc.registers import TANK_MAP
from reporting import plotting
from reporting.bundle import read_csv

# What each process's trend plot shows: the measured variable and its setpoints.
TREND_VARIABLES = {
    "tank": ("level_cm", ("level_high_sp_cm", "level_low_sp_cm"), "pump_on", "level (cm)"),
    "pressure": ("pressure_bar", ("pressure_sp_bar",), "pump_enable", "pressure (bar)"),
}

PARAMS = (
    Param("duration_s", "float", 30.0, "seconds of operation per trial", 2, 3600, quick=10.0),
    Param("plc_cycle_ms", "int", 100, "PLC scan cycle", 10, 10000),
    Param("hmi_period_ms", "int", 100, "HMI polling period", 10, 60000),
    Param("hmi_timeout_ms", "int", 500, "HMI request time-out (a later answer is a miss)",
          10, 60000),
    Param("operator_write", "bool", True,
          "halfway through, the HMI lowers the tank's high setpoint (plc1)"),
    Param("new_high_sp_cm", "float", 100.0, "the setpoint the operator writes", 1, 199),
)


def operator_writes(cfg: dict[str, Any], plc_names: list[str]) -> list[dict[str, Any]]:
    """The scheduled HMI writes: the tank's high setpoint at half the duration."""
    if not cfg["operator_write"] or "plc1" not in plc_names:
        return []
    reg = TANK_MAP.get("level_high_sp")
    raw = reg.to_raw(cfg["new_high_sp_cm"])
    return [{"t_s": cfg["duration_s"] / 2, "plc": "plc1", "table": "holding_register",
             "address": reg.address, "value": raw}]


def _as_written(value: float) -> str:
    """A ground-truth value as the PLC wrote it: a whole number without a decimal point, any
    other in Python's shortest round-trip form (what the PLC's ``csv.writer`` wrote)."""
    return str(int(value)) if value.is_integer() else repr(value)


def _process_rows(plc: str, process: str, path: Path) -> list[dict[str, Any]]:
    """Long-format rows (plc, process, t_s, variable, value) from a PLC's ground-truth CSV.

    A torn last line is skipped (:mod:`common.groundtruth`); no file, no rows.
    """
    try:
        truth = read_ground_truth_file(path)
    except OSError:
        return []
    return [{"plc": plc, "process": process, "t_s": row.t_s, "variable": var,
             "value": _as_written(value)}
            for row in truth for var, value in row.items() if var != TIME_COLUMN]


def check(cfg: dict[str, Any], plan: AddressPlan) -> None:
    """UserError unless the topology has an HMI and PLCs (before anything is created)."""
    if not plan.hosts_with_role("plc") or not plan.hosts_with_role("hmi"):
        raise UserError(f"experiment ics needs a topology with an HMI and PLCs "
                        f"(ics), not {plan.name}")


def trial(ctx: TrialContext) -> TrialResult:
    cfg = ctx.config
    check(cfg, ctx.plan)
    ctx.stage("building the network")
    with running_lab(ctx.lab_config()) as lab:
        ctx.stage("starting PLCs and HMI")
        plc_names = [h.name for h in ctx.plan.hosts_with_role("plc")]
        ics = start_ics(lab, ctx.raw_dir, plc_cycle_ms=cfg["plc_cycle_ms"],
                        hmi_period_ms=cfg["hmi_period_ms"],
                        hmi_timeout_ms=cfg["hmi_timeout_ms"],
                        writes=operator_writes(cfg, plc_names))
        ctx.stage(f"operating for {cfg['duration_s']:g} s")
        deadline = time.monotonic() + cfg["duration_s"]
        while time.monotonic() < deadline:
            lab.check_healthy()
            for dev in ics.plcs:
                if dev.proc.poll() is not None:
                    raise LabError(f"PLC {dev.name} process died "
                                   f"({exit_description(dev.proc.returncode)})")
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        metrics_list = stop_hmi(lab, ics)
        lab.check_healthy()
    hmi_rows, metrics = hmi_results(metrics_list)
    process_rows: list[dict[str, Any]] = []
    for dev in ics.plcs:
        process_rows += _process_rows(dev.name, dev.process, dev.state_csv)
    requests = []
    if ics.hmi_csv is not None and ics.hmi_csv.exists():
        with open(ics.hmi_csv, newline="") as f:
            for r in csv.DictReader(f):
                requests.append({k: r[k] for k in ("t_s", "plc", "function", "latency_ms",
                                                     "outcome")})
    return TrialResult(tables={"hmi": hmi_rows, "hmi_requests": requests,
                               "process": process_rows},
                       metrics=metrics, timeline=dict(lab.timeline))


def plot(bundle: Path) -> list[tuple[str, str]]:
    return plot_process(bundle) + plot_hmi(bundle)


def plot_process(bundle: Path) -> list[tuple[str, str]]:
    """Trends of trial 1: each PLC's variable, setpoints, and pump state."""
    path = bundle / "process.csv"
    if not path.exists():
        return []
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    procs: dict[str, str] = {}
    first_trial = None
    for r in read_csv(path):
        first_trial = first_trial or r["trial"]
        if r["trial"] != first_trial:
            continue
        procs[r["plc"]] = r["process"]
        try:
            series[(r["plc"], r["variable"])].append((float(r["t_s"]), float(r["value"])))
        except ValueError:
            continue
    if not procs:
        return []
    import matplotlib.pyplot as plt

    with plt.rc_context(plotting.STYLE):
        fig, axes = plt.subplots(len(procs), 1, figsize=(7.5, 3.0 * len(procs)), sharex=True,
                                 squeeze=False)
    for ax, plc in zip(axes[:, 0], sorted(procs), strict=True):
        var, setpoints, actuator, label = TREND_VARIABLES.get(
            procs[plc], (None, (), None, "value"))
        if var and (plc, var) in series:
            xs, ys = zip(*series[(plc, var)], strict=True)
            ax.plot(xs, ys, color="#4477aa", label=var)
        for sp in setpoints:
            if (plc, sp) in series:
                xs, ys = zip(*series[(plc, sp)], strict=True)
                ax.plot(xs, ys, linestyle="--", linewidth=1, label=sp)
                changes = [x for (x, y), (_, y0) in zip(series[(plc, sp)][1:],
                                                       series[(plc, sp)][:-1], strict=True)
                           if y != y0]
                for x in changes:
                    ax.axvline(x, color="red", linewidth=0.8)
                    ax.annotate(f"{sp} written", (x, ax.get_ylim()[1]), fontsize=7,
                                color="red", va="top")
        if actuator and (plc, actuator) in series:
            ax2 = ax.twinx()
            xs, ys = zip(*series[(plc, actuator)], strict=True)
            ax2.fill_between(xs, ys, step="post", alpha=0.15, color="#228833")
            ax2.set_ylim(0, 4)
            ax2.set_yticks([0, 1])
            ax2.set_ylabel(f"{actuator} (0/1)", fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(f"{plc}: {procs[plc]} (trial {first_trial}, ground truth)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    return [finish(fig, bundle, "process_trends", "Ground-truth process state logged by each "
                   "PLC every scan cycle (first trial): the measured variable, its setpoints "
                   "(dashed; red lines where a write changed one) and the actuator state "
                   "(shaded).", axes[-1, 0], xlabel="PLC time (s)")]


def plot_hmi(bundle: Path) -> list[tuple[str, str]]:
    path = bundle / "hmi_requests.csv"
    if not path.exists():
        return []
    lat: dict[str, list[tuple[float, float]]] = defaultdict(list)
    misses: dict[str, list[float]] = defaultdict(list)
    first_trial = None
    for r in read_csv(path):
        if r["function"] == "connect":
            continue
        first_trial = first_trial or r["trial"]
        if r["outcome"] == "ok" and r["latency_ms"]:
            lat[r["plc"]].append((float(r["t_s"]), float(r["latency_ms"])))
        elif r["outcome"] != "ok":
            misses[r["plc"]].append(float(r["t_s"]))
    if not lat:
        return []
    out = []
    fig, ax = plotting.figure()
    for plc in sorted(lat):
        xs, ys = zip(*sorted(lat[plc]), strict=True)
        ax.plot(xs, ys, ".", markersize=2, label=f"{plc} (all trials)")
        for x in misses.get(plc, []):
            ax.axvline(x, color="red", alpha=0.2, linewidth=0.5)
    ax.set_yscale("log")
    out.append(finish(fig, bundle, "hmi_latency_timeseries", "Latency of every answered HMI "
                      "request over time, all trials overlaid; red lines mark requests that "
                      "timed out or failed.", ax, xlabel="HMI time (s)",
                      ylabel="request latency (ms, log scale)",
                      title="HMI Modbus request latency over time (red: failed requests)",
                      legend={"fontsize": 8, "markerscale": 4}))
    out.append(cdf_figure(
        bundle, "hmi_latency_cdf", "CDF of HMI Modbus request latencies per PLC, all trials "
        "pooled.", [(f"{plc} (n={len(lat[plc])})", [v for _t, v in lat[plc]], None)
                    for plc in sorted(lat)],
        xlabel="request latency (ms, log scale)", ylabel="cumulative fraction of requests",
        title="HMI Modbus request latency distribution", log_x=True,
        legend={"fontsize": 8, "loc": "lower right"}))
    return out


EXPERIMENT = Experiment.from_module(
    __name__, "ics",
    "baseline ICS operation: HMI availability and latency, process trends")
