"""How many emulated hosts and PLCs fit on one cluster server: measure, then model.

``python -m lab.cluster_capacity measure --cluster FILE [--topo star --n-hosts N | --plant
FILE]`` samples every server (``python -m lab.cluster_sample`` over ssh, in parallel), builds
the network over the servers (the ICS devices started when the plan has PLCs), idles, samples
again, and prints each server's figures and the per-host and per-PLC costs as JSON: memory
(PSS) and CPU of what the run added, by kind — host shells and their ssh sessions,
ovs-vswitchd, PLC servers, the HMI.

``python -m lab.cluster_capacity model --ram-gib R --cores C`` turns per-unit costs (the
measured defaults :data:`MEASURED`, or ``--costs`` from a ``measure`` JSON) into hosts and
PLCs per server (:func:`capacity`, pure). docs/cluster.md has the measured table.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, int_in, run_main
from common.errors import SetupError, UserError
from common.plan import AddressPlan, plan_for
from lab.cluster import ClusterSpec, load_cluster
from lab.cluster_nodes import ssh_command
from lab.devices import load_plant_plan, plc_specs, start_ics
from lab.lifecycle import LabConfig, running_lab
from lab.lock import RunLock
from lab.platform import require_lab_prerequisites, resolve_engine


@dataclass(frozen=True)
class UnitCosts:
    """Per-unit costs on one server. host: an emulated host's shell, its ssh session on the
    server and its switch port (PSS MiB, % of a core idle); plc: a PLC server process on top
    of its host; base: the server's fixed share (OVS daemons, sshd)."""

    host_mib: float
    host_cpu_pct: float
    plc_mib: float
    plc_cpu_pct: float
    base_mib: float


@dataclass(frozen=True)
class Capacity:
    hosts: int
    hosts_bound: str  # "memory" or "cpu": which runs out first
    plcs: int
    plcs_bound: str


def capacity(ram_gib: float, cores: int, costs: UnitCosts, headroom: float = 0.5) -> Capacity:
    """Hosts (idle, no PLC) and PLCs (each with its host) that fit on a server with
    ``ram_gib`` and ``cores``, leaving ``headroom`` of memory and CPU for traffic, attacks
    and the OS (the userspace datapath's per-packet CPU grows with traffic, not with hosts)."""
    ram_mib = ram_gib * 1024 * (1 - headroom) - costs.base_mib
    cpu_pct = cores * 100 * (1 - headroom)
    out: list[tuple[int, str]] = []
    for mib, pct in ((costs.host_mib, costs.host_cpu_pct),
                     (costs.host_mib + costs.plc_mib, costs.host_cpu_pct + costs.plc_cpu_pct)):
        by_mem = int(max(ram_mib, 0) // mib)
        by_cpu = int(cpu_pct // pct) if pct > 0 else by_mem
        out.append((by_mem, "memory") if by_mem <= by_cpu else (by_cpu, "cpu"))
    return Capacity(hosts=out[0][0], hosts_bound=out[0][1], plcs=out[1][0],
                    plcs_bound=out[1][1])


# Measured on the emulated cluster, 2026-12-02, CPU saturated by other work (docs/cluster.md,
# "Capacity model"): a star of 250 over 3 servers (hosts) and the treatment plant (8 PLCs).
MEASURED = UnitCosts(host_mib=2.5, host_cpu_pct=0.036, plc_mib=28.0, plc_cpu_pct=1.1,
                     base_mib=20.0)


def unit_costs(before: dict[str, Any], after: dict[str, Any]) -> UnitCosts:
    """Per-unit costs from server samples before and after a run (summed over servers)."""
    def total(samples: dict[str, Any], field: str, kinds: tuple[str, ...]) -> float:
        return sum(s[field][k] for s in samples.values() for k in kinds)
    hosts = sum(s["namespaces"] for s in after.values()) or 1
    plcs = sum(s["plcs"] for s in after.values())
    host_kinds = ("shells", "sshd", "tunnels", "ovs")
    host_mib = (total(after, "pss_mib", host_kinds) - total(before, "pss_mib", host_kinds))
    host_cpu = total(after, "cpu_pct", host_kinds) - total(before, "cpu_pct", host_kinds)
    return UnitCosts(host_mib=round(host_mib / hosts, 3), host_cpu_pct=round(host_cpu / hosts, 4),
                     plc_mib=round(total(after, "pss_mib", ("plc",)) / plcs, 2) if plcs else 0.0,
                     plc_cpu_pct=round(total(after, "cpu_pct", ("plc",)) / plcs, 3)
                     if plcs else 0.0,
                     base_mib=round(total(before, "pss_mib", ("ovs", "sshd")) / len(before), 1))


def sample_servers(cluster: ClusterSpec, interval_s: float) -> dict[str, Any]:
    """``lab.cluster_sample`` on every server, over ssh, in parallel; server name → sample."""
    procs = {}
    for server in cluster.servers:
        line = (f"cd {shlex.quote(server.project_dir)} && {shlex.quote(server.interpreter)} "
                f"-m lab.cluster_sample --interval-s {interval_s:g}")
        procs[server.name] = subprocess.Popen([*ssh_command(cluster, server), line],
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True, stdin=subprocess.DEVNULL)
    out = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=interval_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SetupError(f"{name}: lab.cluster_sample did not answer") from None
        if proc.returncode != 0:
            raise SetupError(f"{name}: lab.cluster_sample failed: {stderr.strip()[-200:]}")
        out[name] = json.loads(stdout)
    return out


def measure(cluster: ClusterSpec, plan: AddressPlan, idle_s: float, log_dir: Path,
            engine: str = "auto") -> dict[str, Any]:
    """Samples before and after building ``plan`` over ``cluster`` (devices started), the
    per-unit costs, and the build and teardown times."""
    before = sample_servers(cluster, idle_s)
    cfg = LabConfig(plan=plan, log_dir=log_dir, engine=resolve_engine(engine), datapath="user",
                    cluster=cluster)
    t0 = time.monotonic()
    with running_lab(cfg) as lab:
        if plc_specs(plan):
            start_ics(lab, log_dir)
        after = sample_servers(cluster, idle_s)
        timeline = dict(lab.timeline)
    timeline["teardown_s"] = lab.timeline.get("teardown_s", 0.0)
    timeline["total_s"] = time.monotonic() - t0
    return {"plan": plan.name, "hosts": len(plan.hosts), "plcs": len(plc_specs(plan)),
            "servers": [s.name for s in cluster.servers],
            "timeline_s": {k: round(v, 2) for k, v in timeline.items()},
            "before": before, "after": after,
            "costs": asdict(unit_costs(before, after))}


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _plan(args: Any) -> AddressPlan:
    if args.plant:
        return load_plant_plan(args.plant)
    return plan_for(args.topo, args.n_hosts)


def _main(args: Any) -> int:
    if args.command == "model":
        costs = MEASURED
        if args.costs:
            try:
                data = json.loads(Path(args.costs).read_text())
                costs = UnitCosts(**data.get("costs", data))
            except (OSError, ValueError, TypeError) as exc:
                raise UserError(f"--costs {args.costs}: not a measure JSON ({exc})") from None
        cap = capacity(args.ram_gib, args.cores, costs, args.headroom)
        print(f"server of {args.ram_gib:g} GiB, {args.cores} cores, {args.headroom:.0%} "
              f"headroom: {cap.hosts} idle hosts ({cap.hosts_bound} bound) or {cap.plcs} "
              f"PLCs with their hosts ({cap.plcs_bound} bound); per host {costs.host_mib:g} "
              f"MiB, {costs.host_cpu_pct:g} % CPU; per PLC +{costs.plc_mib:g} MiB, "
              f"+{costs.plc_cpu_pct:g} % CPU")
        return 0
    require_lab_prerequisites()
    cluster = load_cluster(args.cluster)
    plan = _plan(args)
    log_dir = Path(args.out or tempfile.mkdtemp(prefix="sdn-ics-capacity-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # leave through the lab's teardown
        signal.signal(sig, _interrupted)
    try:
        with RunLock(f"lab.cluster_capacity measure ({plan.name})"):
            result = measure(cluster, plan, args.idle_s, log_dir, args.engine)
    except KeyboardInterrupt:
        print("interrupted; everything the run created was removed", file=sys.stderr)
        return 130
    (log_dir / "capacity.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result if args.full else {k: v for k, v in result.items()
                                               if k not in ("before", "after")}))
    print(f"samples and logs: {log_dir}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m lab.cluster_capacity",
                      description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="build a plan over a cluster and sample every server")
    m.add_argument("--cluster", required=True, help="cluster file (docs/cluster.md)")
    m.add_argument("--topo", choices=("ics", "classic", "star", "linear"), default="star")
    m.add_argument("--n-hosts", type=int_in(2, 1000), default=250)
    m.add_argument("--plant", default="", help="plant file (replaces --topo)")
    m.add_argument("--idle-s", type=float, default=10.0, help="CPU sampling interval")
    m.add_argument("--engine", choices=("auto", "ryu", "os-ken"), default="auto")
    m.add_argument("--out", default="", help="folder for logs and capacity.json")
    m.add_argument("--full", action="store_true", help="print every server's samples too")
    mo = sub.add_parser("model", help="hosts and PLCs per server of a given size")
    mo.add_argument("--ram-gib", type=float, required=True)
    mo.add_argument("--cores", type=int_in(1, 4096), required=True)
    mo.add_argument("--headroom", type=float, default=0.5,
                    help="share of memory and CPU kept free (default 0.5)")
    mo.add_argument("--costs", default="", help="a measure JSON (default: the measured costs)")
    return run_main(lambda: _main(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
