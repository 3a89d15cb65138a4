"""Starting the ICS devices inside their hosts: the PLCs and the HMI.

Each PLC host runs what the plan says (:class:`common.plan.PlcSpec`: process kind and
parameters, scan cycle, port; a plant file sets them, ``docs/plants.md``); a PLC host the plan
says nothing about runs the processes of :data:`PROCESS_ORDER` (the first such PLC the water
tank, the second the pressure loop, then alternating). Each is a real pymodbus server
writing its ground-truth state to a CSV in the trial's raw folder and every Modbus request
it serves to its request log next to it (:func:`common.requestlog.log_path`). The HMI polls
the PLCs the plan's HMI entry names (every PLC when there is none) at its period, runs its
scheduled operator writes, and records every request; its figures go into the results of
any experiment that brings the ICS up.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.modbus import MODBUS_PORT
from common.plan import AddressPlan, HmiSpec, PlcSpec
from common.plant import load_plant
from common.requestlog import log_path
from lab.lifecycle import Lab
from plc.metrics import PlcMetrics, records_from_csv
from plc.metrics import summarize as hmi_summarize
from plc.program import process_kinds
from plc.registers import MAPS
from reporting.stats import Proportion

PROCESS_ORDER = ("tank", "pressure")
# The server module each protocol's PLC runs (common.plan.PROTOCOLS).
PLC_SERVERS = {"modbus": "plc.server", "s7": "plc.s7_server"}
HMI_MAX_DURATION_S = 24 * 3600  # the HMI is stopped at the end of the trial; this is a bound


@dataclass(frozen=True)
class PlcDevice:
    name: str
    ip: str
    process: str
    port: int
    state_csv: Path
    proc: subprocess.Popen[bytes]
    request_log: Path | None = None
    protocol: str = "modbus"


@dataclass
class Ics:
    """The running devices of one lab."""

    plcs: list[PlcDevice]
    hmi_csv: Path | None = None
    hmi_proc: subprocess.Popen[bytes] | None = None
    hmi_metrics: list[PlcMetrics] = field(default_factory=list)


def load_plant_plan(path: Path | str) -> AddressPlan:
    """The plan of a plant file, checked against the process kinds the PLCs can run.

    Raises common.plant.PlantError (a UserError: one line naming the key path).
    """
    return load_plant(path, process_kinds())


def plc_specs(plan: AddressPlan) -> list[PlcSpec]:
    """What every PLC host runs: the plan's entry, else the default of :data:`PROCESS_ORDER`."""
    specs = []
    unplanned = 0
    for h in plan.hosts_with_role("plc"):
        spec = plan.plc_spec(h.name)
        if spec is None:
            spec = PlcSpec(h.name, PROCESS_ORDER[unplanned % len(PROCESS_ORDER)],
                           port=MODBUS_PORT)
            unplanned += 1
        specs.append(spec)
    return specs


def plc_processes(plan: AddressPlan) -> dict[str, str]:
    """PLC host name → process model name."""
    return {s.host: s.process for s in plc_specs(plan)}


def hmi_spec(plan: AddressPlan) -> HmiSpec | None:
    """What the HMI polls: the plan's entry, else the first HMI host polling every PLC."""
    if plan.hmis:
        return plan.hmis[0]
    hmis = plan.hosts_with_role("hmi")
    if not hmis:
        return None
    return HmiSpec(hmis[0].name, polls=tuple(h.name for h in plan.hosts_with_role("plc")))


def operator_writes(plan: AddressPlan, spec: HmiSpec) -> list[dict[str, Any]]:
    """The HMI's scheduled operator actions as ``plc.hmi --writes`` items (raw values)."""
    kinds = plc_processes(plan)
    writes = []
    for action in spec.actions:
        reg = MAPS[kinds[action.plc]].get(action.register)
        writes.append({"t_s": action.t_s, "plc": action.plc, "table": str(reg.table),
                       "address": reg.address, "value": reg.to_raw(action.value)})
    return writes


def expected_open_ports(plan: AddressPlan) -> dict[str, set[int]]:
    """Ground truth of listening TCP ports per IP once the devices run."""
    truth: dict[str, set[int]] = {h.ip: set() for h in plan.hosts}
    for spec in plc_specs(plan):
        truth[plan.host(spec.host).ip].add(spec.port)
    return truth


def start_plcs(lab: Lab, raw_dir: Path, cycle_ms: float | None = None,
               ready_timeout_s: float = 20.0) -> list[PlcDevice]:
    """Start every PLC of the plan and wait until each one listens.

    cycle_ms: every PLC's scan cycle (None: each PLC's own, from the plan).
    """
    devices = []
    for spec in plc_specs(lab.plan):
        name = spec.host
        csv_path = raw_dir / f"{name}_state.csv"
        requests = log_path(raw_dir, name)
        cycle = spec.scan_cycle_ms if cycle_ms is None else cycle_ms
        args = ["--process", spec.process, "--host", "0.0.0.0", "--port", str(spec.port),
                "--cycle-ms", f"{cycle:g}", "--state-csv", str(csv_path),
                "--request-log", str(requests), "--name", name]
        if spec.params:
            args += ["--params", json.dumps(dict(spec.params))]
        proc = lab.python(name, PLC_SERVERS[spec.protocol], args, f"{name}.log")
        devices.append(PlcDevice(name, lab.plan.host(name).ip, spec.process, spec.port,
                                 csv_path, proc, requests, spec.protocol))
    for dev in devices:
        lab.wait_for_log(f"{dev.name}.log", "plc ready", ready_timeout_s, dev.proc)
    return devices


def start_ics(lab: Lab, raw_dir: Path, plc_cycle_ms: float | None = None,
              hmi_period_ms: float | None = None, hmi_timeout_ms: float | None = None,
              writes: list[dict[str, Any]] | None = None, hmi: bool = True) -> Ics:
    """PLCs, then (when the plan has an HMI host) the HMI polling what the plan says.

    plc_cycle_ms, hmi_period_ms, hmi_timeout_ms: None takes the plan's values; a number
    (an experiment's option) overrides them. writes: operator writes added to the plan's.
    """
    ics = Ics(plcs=start_plcs(lab, raw_dir, cycle_ms=plc_cycle_ms))
    spec = hmi_spec(lab.plan)
    polled = [d for d in ics.plcs if spec is not None and d.name in spec.polls]
    if not hmi or spec is None or not polled:
        return ics
    args = []
    for dev in polled:
        suffix = "" if dev.protocol == "modbus" else f"/{dev.protocol}"
        args += ["--plc", f"{dev.name}={dev.ip}:{dev.port}{suffix}"]
    period = spec.period_ms if hmi_period_ms is None else hmi_period_ms
    timeout = spec.timeout_ms if hmi_timeout_ms is None else hmi_timeout_ms
    ics.hmi_csv = raw_dir / "hmi_requests.csv"
    args += ["--period-ms", f"{period:g}", "--timeout-ms", f"{timeout:g}",
             "--duration-s", str(HMI_MAX_DURATION_S), "--out", str(ics.hmi_csv)]
    writes = operator_writes(lab.plan, spec) + list(writes or [])
    if writes:
        wpath = raw_dir / "hmi_writes.json"
        wpath.write_text(json.dumps(writes, indent=1))
        args += ["--writes", str(wpath)]
    ics.hmi_proc = lab.python(spec.host, "plc.hmi", args, "hmi.log")
    return ics


def stop_hmi(lab: Lab, ics: Ics) -> list[PlcMetrics]:
    """Stop the HMI and compute its figures per PLC from what it recorded."""
    if ics.hmi_proc is None or ics.hmi_csv is None:
        return []
    lab.stop(ics.hmi_proc)
    ics.hmi_proc = None
    try:
        with open(ics.hmi_csv) as f:
            ics.hmi_metrics = hmi_summarize(records_from_csv(f))
    except OSError:
        ics.hmi_metrics = []
    return ics.hmi_metrics


def hmi_results(metrics: list[PlcMetrics]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows for the ``hmi`` table and scalar metrics (``hmi_<plc>_availability``...)."""
    rows = [asdict(m) for m in metrics]
    scalars: dict[str, float] = {}
    polls = sum(m.polls for m in metrics)
    if polls:
        scalars["hmi_availability"] = Proportion(sum(m.polls_ok for m in metrics), polls)
    for m in metrics:
        p = f"hmi_{m.plc}"
        scalars[f"{p}_availability"] = (Proportion(m.polls_ok, m.polls) if m.polls
                                         else m.availability)
        scalars[f"{p}_latency_p50_ms"] = m.latency_p50_ms
        scalars[f"{p}_latency_p95_ms"] = m.latency_p95_ms
        scalars[f"{p}_longest_outage_s"] = m.longest_outage_s
        scalars[f"{p}_reconnects"] = float(m.reconnects)
    return rows, {k: v for k, v in scalars.items() if not math.isnan(v)}
