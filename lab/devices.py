"""Starting the ICS devices inside their hosts: the PLCs and the HMI.

The PLC hosts of the plan, in order, run the processes of :data:`PROCESS_ORDER` (PLC 1 the
water tank, PLC 2 the pressure loop, then alternating), each a real pymodbus server on port
502 writing its ground-truth state to a CSV in the trial's raw folder and every Modbus request
it serves to its request log next to it (:func:`common.requestlog.log_path`). The HMI polls
every PLC from the HMI host and records every request; its figures go into the results of
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
from common.plan import AddressPlan
from common.requestlog import log_path
from lab.lifecycle import Lab
from plc.metrics import PlcMetrics, records_from_csv
from plc.metrics import summarize as hmi_summarize
from reporting.stats import Proportion

PROCESS_ORDER = ("tank", "pressure")
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


@dataclass
class Ics:
    """The running devices of one lab."""

    plcs: list[PlcDevice]
    hmi_csv: Path | None = None
    hmi_proc: subprocess.Popen[bytes] | None = None
    hmi_metrics: list[PlcMetrics] = field(default_factory=list)


def plc_processes(plan: AddressPlan) -> dict[str, str]:
    """PLC host name → process model name."""
    plcs = plan.hosts_with_role("plc")
    return {h.name: PROCESS_ORDER[i % len(PROCESS_ORDER)] for i, h in enumerate(plcs)}


def expected_open_ports(plan: AddressPlan) -> dict[str, set[int]]:
    """Ground truth of listening TCP ports per IP once the devices run."""
    truth: dict[str, set[int]] = {h.ip: set() for h in plan.hosts}
    for h in plan.hosts_with_role("plc"):
        truth[h.ip].add(MODBUS_PORT)
    return truth


def start_plcs(lab: Lab, raw_dir: Path, cycle_ms: int = 100,
               ready_timeout_s: float = 20.0) -> list[PlcDevice]:
    """Start every PLC of the plan and wait until each one listens."""
    devices = []
    for name, process in plc_processes(lab.plan).items():
        csv_path = raw_dir / f"{name}_state.csv"
        requests = log_path(raw_dir, name)
        proc = lab.python(name, "plc.server", [
            "--process", process, "--host", "0.0.0.0", "--port", str(MODBUS_PORT),
            "--cycle-ms", str(cycle_ms), "--state-csv", str(csv_path),
            "--request-log", str(requests), "--name", name], f"{name}.log")
        devices.append(PlcDevice(name, lab.plan.host(name).ip, process, MODBUS_PORT,
                                 csv_path, proc, requests))
    for dev in devices:
        lab.wait_for_log(f"{dev.name}.log", "plc ready", ready_timeout_s, dev.proc)
    return devices


def start_ics(lab: Lab, raw_dir: Path, plc_cycle_ms: int = 100, hmi_period_ms: int = 100,
              hmi_timeout_ms: int = 500, writes: list[dict[str, Any]] | None = None,
              hmi: bool = True) -> Ics:
    """PLCs, then (when the plan has an HMI host) the HMI polling all of them."""
    ics = Ics(plcs=start_plcs(lab, raw_dir, cycle_ms=plc_cycle_ms))
    hmi_hosts = lab.plan.hosts_with_role("hmi")
    if not hmi or not hmi_hosts or not ics.plcs:
        return ics
    args = []
    for dev in ics.plcs:
        args += ["--plc", f"{dev.name}={dev.ip}:{dev.port}"]
    ics.hmi_csv = raw_dir / "hmi_requests.csv"
    args += ["--period-ms", str(hmi_period_ms), "--timeout-ms", str(hmi_timeout_ms),
             "--duration-s", str(HMI_MAX_DURATION_S), "--out", str(ics.hmi_csv)]
    if writes:
        wpath = raw_dir / "hmi_writes.json"
        wpath.write_text(json.dumps(writes, indent=1))
        args += ["--writes", str(wpath)]
    ics.hmi_proc = lab.python(hmi_hosts[0].name, "plc.hmi", args, "hmi.log")
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
