"""Starting the ICS devices (PLCs) inside their hosts for a lab.

The PLC hosts of the plan, in order, run the processes of :data:`PROCESS_ORDER` (PLC 1 the
water tank, PLC 2 the pressure loop, then alternating), each a real pymodbus server on port
502 writing its ground-truth state to a CSV in the trial's raw folder.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from experiments.lab import Lab
from topologies.plan import AddressPlan

PROCESS_ORDER = ("tank", "pressure")
MODBUS_PORT = 502


@dataclass(frozen=True)
class PlcDevice:
    name: str
    ip: str
    process: str
    port: int
    state_csv: Path
    proc: subprocess.Popen[bytes]


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
        proc = lab.python(name, "plc.server", [
            "--process", process, "--host", "0.0.0.0", "--port", str(MODBUS_PORT),
            "--cycle-ms", str(cycle_ms), "--state-csv", str(csv_path)], f"{name}.log")
        devices.append(PlcDevice(name, lab.plan.host(name).ip, process, MODBUS_PORT,
                                 csv_path, proc))
    for dev in devices:
        lab.wait_for_log(f"{dev.name}.log", "plc ready", ready_timeout_s, dev.proc)
    return devices
