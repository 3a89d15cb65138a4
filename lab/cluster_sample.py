"""``python -m lab.cluster_sample``: what runs on this cluster server, by kind, as JSON.

Run on each server over ssh by ``python -m lab.cluster_capacity measure`` (with the server's
own interpreter, from its checkout). The server's processes are those with the sampler's
:func:`server_key`: on an emulated server (``lab.emucluster``) the server's and its emulated
hosts', on a real machine all. Memory is PSS (shared pages split between their users), CPU
the share of one core over the sampling interval. Light on purpose: the standard library and
``common.cli`` only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, run_main

CLK_TCK = os.sysconf("SC_CLK_TCK")
KINDS = ("shells", "sshd", "tunnels", "ovs", "plc", "hmi", "other")


def kind_of(argv: list[str]) -> str:
    """What a process on a server is, from its command line (``KINDS``)."""
    text = " ".join(argv)
    name = Path(argv[0]).name if argv else ""
    if "plc.hmi" in text:
        return "hmi"
    if "plc.server" in text or "plc.s7_server" in text:
        return "plc"
    if name.startswith("ovs-vswitchd") or name.startswith("ovsdb-server"):
        return "ovs"
    if name.startswith("sshd") or text.startswith("sshd:"):
        return "sshd"
    if name == "ssh":
        return "tunnels"
    if "mininet:" in text or name in ("mnexec", "sudo") or text.startswith("bash --norc"):
        return "shells"
    return "other"


def _pss_kib(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_ticks(pid: str) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


OVS_RUN = "/run/openvswitch"


def server_key(pid: int | str) -> str | None:
    """Which server a process runs on, from its mount table: the source of the mount on
    ``/run/openvswitch`` (an emulated server bind-mounts its own directory there, and every
    emulated host inherits the server's mounts into its own mount namespace), or "" where
    there is no such mount (a real machine, the head). None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/mountinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == OVS_RUN:
            return f"{fields[2]} {fields[3]}"
    return ""


def processes_of(key: str) -> Iterator[tuple[str, list[str]]]:
    """(pid, argv) of every process whose :func:`server_key` is ``key``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or server_key(proc.name) != key:
            continue
        try:
            argv = [a.decode(errors="replace") for a in
                    (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if argv:
            yield proc.name, argv


def _own_processes() -> Iterator[tuple[str, list[str]]]:
    """Processes of this server (the sampler's :func:`server_key`: on an emulated server the
    server's and its hosts', on a real machine all), except this sampler."""
    me = str(os.getpid())
    key = server_key("self") or ""
    for pid, argv in processes_of(key):
        if pid != me:
            yield pid, argv


def sample(interval_s: float) -> dict[str, Any]:
    """This server's PSS (MiB) and CPU (% of one core over ``interval_s``) by kind, and how
    many network namespaces other than its own hold processes (its emulated nodes)."""
    own_ns = os.readlink("/proc/self/ns/net")
    procs = dict(_own_processes())
    ticks0 = {pid: _cpu_ticks(pid) for pid in procs}
    time.sleep(interval_s)
    pss = dict.fromkeys(KINDS, 0.0)
    cpu = dict.fromkeys(KINDS, 0.0)
    netns: set[str] = set()
    plcs = 0
    for pid, argv in procs.items():
        kind = kind_of(argv)
        if kind == "other":  # the sampler's own shell, cron...: not the run's
            continue
        pss[kind] += _pss_kib(pid) / 1024
        cpu[kind] += (_cpu_ticks(pid) - ticks0[pid]) / CLK_TCK / interval_s * 100
        # A remote PLC is a wrapper shell, its watcher and the Python server: count the last.
        plcs += kind == "plc" and Path(argv[0]).name.startswith("python")
        try:
            ns = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if ns != own_ns:
            netns.add(ns)
    mem = {k: int(v.split()[0]) for k, v in (
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        if k in ("MemTotal", "MemAvailable")}
    return {"pss_mib": {k: round(v, 2) for k, v in pss.items()},
            "cpu_pct": {k: round(v, 3) for k, v in cpu.items()},
            "namespaces": len(netns), "plcs": plcs,
            "mem_total_mib": mem["MemTotal"] // 1024,
            "mem_available_mib": mem["MemAvailable"] // 1024, "cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m lab.cluster_sample", description=__doc__.splitlines()[0])
    p.add_argument("--interval-s", type=float, default=5.0, help="CPU sampling interval")

    def body() -> int:
        args = p.parse_args(argv)
        print(json.dumps(sample(max(args.interval_s, 0.1))))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
