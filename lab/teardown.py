"""Removing exactly what a run-state record names: processes, OVS bridges, interfaces.

Used by the lab's own teardown (after Mininet's ``net.stop()``, as a safety net) and by
``python -m experiments.clean`` after a crash. Never kills by name, never touches a bridge or
interface the record does not list.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from common.cli import wait_until
from lab.runstate import ProcessRecord, RunState, ServerRecord, pid_alive

log = logging.getLogger(__name__)


@dataclass
class Removed:
    """What a clean-up actually removed (for the report)."""

    processes: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def total(self) -> int:
        return len(self.processes) + len(self.bridges) + len(self.interfaces)

    def describe(self) -> str:
        parts = []
        if self.processes:
            parts.append(f"{len(self.processes)} process(es) ({', '.join(self.processes)})")
        if self.bridges:
            parts.append(f"{len(self.bridges)} bridge(s) ({', '.join(self.bridges)})")
        if self.interfaces:
            parts.append(f"{len(self.interfaces)} interface(s) ({', '.join(self.interfaces)})")
        if self.unreachable:
            parts.append(f"server(s) not reachable over ssh: {', '.join(self.unreachable)}")
        return "; ".join(parts) if parts else "nothing"


# Run on a cluster server over ssh: every process inside a recorded host namespace (never the
# server's own), then the recorded bridges and interfaces; one line per thing removed.
# One find over /proc, not a readlink per process and namespace: a server with thousands of
# processes took 11 s per server that way.
REMOTE_REMOVE = r"""
own=$(readlink /proc/$$/ns/net)
set -- {netns}
pids=$(find /proc/[0-9]*/ns/net -maxdepth 0 -printf '%l %p\n' 2>/dev/null | awk -v own="$own" \
  -v list="$*" 'BEGIN {{ n = split(list, a, " "); for (i = 1; i <= n; i++) if (a[i] != own)
  want[a[i]] = 1 }} ($1 in want) {{ split($2, f, "/"); print f[3] }}')
for p in $pids; do kill -TERM $p 2>/dev/null && echo "process $p"; done
[ -n "$pids" ] && sleep 1 && for p in $pids; do kill -KILL $p 2>/dev/null; done
for b in {bridges}; do
  ovs-vsctl --timeout=10 br-exists $b && ovs-vsctl --timeout=10 del-br $b && echo "bridge $b"
done
for i in {interfaces}; do
  ip link show dev $i >/dev/null 2>&1 && ip link del $i && echo "interface $i"
done
true
"""


def remove_on_server(rec: ServerRecord, removed: Removed, timeout_s: float = 60.0) -> bool:
    """Remove what ``rec`` lists on its server, over ssh; False if the server did not answer."""
    script = REMOTE_REMOVE.format(
        netns=" ".join(shlex.quote(n) for n in rec.netns) or "''",
        bridges=" ".join(shlex.quote(b) for b in rec.bridges),
        interfaces=" ".join(shlex.quote(i) for i in rec.interfaces))
    try:
        res = subprocess.run([*rec.ssh, "sh -c " + shlex.quote(script)], capture_output=True,
                             text=True, timeout=timeout_s, check=False,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s: clean-up over ssh failed: %s", rec.name, exc)
        removed.unreachable.append(rec.name)
        return False
    if res.returncode == 255:  # ssh's own failure, not the script's
        log.warning("%s: ssh failed: %s", rec.name, res.stderr.strip()[:200])
        removed.unreachable.append(rec.name)
        return False
    for line in res.stdout.splitlines():
        kind, _, name = line.partition(" ")
        target = {"process": removed.processes, "bridge": removed.bridges,
                  "interface": removed.interfaces}.get(kind)
        if target is not None:
            target.append(f"{rec.name}:{name}")
    return True


def stop_pid(rec: ProcessRecord, grace_s: float = 3.0) -> bool:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. True if it was running."""
    if not pid_alive(rec.pid, rec.start_ticks):
        return False
    try:
        os.kill(rec.pid, signal.SIGTERM)
        if rec.what.startswith("shell:"):
            # An interactive bash (every Mininet node's shell) ignores SIGTERM; SIGHUP ends it.
            os.kill(rec.pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    if wait_until(lambda: not pid_alive(rec.pid, rec.start_ticks), grace_s, interval_s=0.05):
        return True
    try:
        os.kill(rec.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def existing_bridges() -> set[str]:
    try:
        res = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(res.stdout.split()) if res.returncode == 0 else set()


def interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def remove_recorded(state: RunState, grace_s: float = 3.0) -> Removed:
    """Remove what ``state`` lists, in reverse order of creation. Idempotent."""
    removed = Removed()
    for rec in reversed(state.processes):
        if stop_pid(rec, grace_s):
            removed.processes.append(f"{rec.what}[{rec.pid}]")
    bridges = existing_bridges()
    for br in state.bridges:
        if br in bridges:
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", br],
                           capture_output=True, timeout=20, check=False)
            removed.bridges.append(br)
    for intf in state.interfaces:
        if interface_exists(intf):
            subprocess.run(["ip", "link", "del", intf], capture_output=True, timeout=10,
                           check=False)
            removed.interfaces.append(intf)
    for server in state.servers:
        remove_on_server(server, removed)
    return removed
