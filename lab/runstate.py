"""Run-state records: what a run created, on disk, so teardown and ``experiments.clean`` remove
exactly that and nothing else.

One JSON file per active lab under :data:`STATE_DIR`. Entries are added *before* the thing they
name is created, so a crash at any point leaves a record that covers it. Pids are stored with
their kernel start time so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.files import atomic_write_text

log = logging.getLogger(__name__)

STATE_DIR = Path(os.environ.get("SDNICS_STATE_DIR", "/run/sdn-ics-lab"))


def proc_start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def pid_alive(pid: int, start_ticks: int | None) -> bool:
    """True when ``pid`` runs and is the same process we recorded (same start time)."""
    now = proc_start_ticks(pid)
    if now is None:
        return False
    if start_ticks is None:
        return True
    return now == start_ticks




@dataclass
class ProcessRecord:
    pid: int
    start_ticks: int | None
    what: str


@dataclass
class ServerRecord:
    """What a cluster run created on one server (``lab.cluster_nodes``), removed over ssh.

    ssh: the client command that reaches the server (``ssh`` + options + ``user@address``).
    netns: ``net:[inode]`` of each emulated host's namespace there: every process inside one
    is ours. bridges, interfaces: names in the server's root namespace.
    """

    name: str
    ssh: list[str]
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)


@dataclass
class RunState:
    """What one lab created. ``path`` is where this record lives."""

    run_id: str
    owner_pid: int
    owner_start_ticks: int | None
    created_unix_s: float
    log_dir: str = ""
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    servers: list[ServerRecord] = field(default_factory=list)
    path: Path | None = None

    @classmethod
    def new(cls, run_id: str, log_dir: Path | str = "") -> RunState:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        state = cls(run_id=run_id, owner_pid=pid, owner_start_ticks=proc_start_ticks(pid),
                    created_unix_s=time.time(), log_dir=str(log_dir),
                    path=STATE_DIR / f"{run_id}.json")
        state.save()
        return state

    def save(self) -> None:
        if self.path is None:
            return
        data = asdict(self)
        data.pop("path")
        atomic_write_text(self.path, json.dumps(data, indent=1))

    def add_bridges(self, names: list[str]) -> None:
        self.bridges.extend(n for n in names if n not in self.bridges)
        self.save()

    def add_interfaces(self, names: list[str]) -> None:
        self.interfaces.extend(n for n in names if n not in self.interfaces)
        self.save()

    def add_process(self, pid: int, what: str) -> None:
        self.processes.append(ProcessRecord(pid, proc_start_ticks(pid), what))
        self.save()

    def add_processes(self, items: list[tuple[int, str]]) -> None:
        """Record many (pid, what) at once: one write instead of one per process."""
        self.processes.extend(ProcessRecord(pid, proc_start_ticks(pid), what)
                              for pid, what in items)
        self.save()

    def drop_process(self, pid: int) -> None:
        self.processes = [p for p in self.processes if p.pid != pid]
        self.save()

    def server(self, name: str, ssh: list[str]) -> ServerRecord:
        """This run's record of cluster server ``name`` (created, and saved, on first use)."""
        for rec in self.servers:
            if rec.name == name:
                return rec
        rec = ServerRecord(name=name, ssh=list(ssh))
        self.servers.append(rec)
        self.save()
        return rec

    def owner_alive(self) -> bool:
        return pid_alive(self.owner_pid, self.owner_start_ticks)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> RunState:
        data = json.loads(path.read_text())
        procs = [ProcessRecord(**p) for p in data.pop("processes", [])]
        servers = [ServerRecord(**s) for s in data.pop("servers", [])]
        return cls(processes=procs, servers=servers, path=path, **data)


def all_states() -> list[RunState]:
    """Every run-state record on this machine; unreadable files are skipped with a warning."""
    if not STATE_DIR.is_dir():
        return []
    states = []
    for path in sorted(STATE_DIR.glob("*.json")):
        try:
            states.append(RunState.load(path))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("skipping unreadable run-state %s: %s", path, exc)
    return states
