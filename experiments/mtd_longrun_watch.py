"""What ``mtd-longrun`` watches while a condition runs: the PLCs' own request logs (to end the
window early once every PLC has been reached) and the controller's load over time.

**Early stop.** The cumulative-reached curve cannot rise once every PLC of the plan has been
reached, so the rest of the window measures nothing the figure shows. :class:`ReachWatch` reads
the PLCs' request logs as they grow; when every PLC has logged an answered request from the
attacker's address (the PLC-log "reached" that ``persistent_progress.csv`` counts: the
persistent attacker sends only from its own address) it sends SIGUSR1 to the attacker, which
finishes the round under way and writes its whole outcome (:mod:`attacks.attacker_persistent`).
It records when the logs showed the last PLC reached and when the stop was sent.

**Load over time.** :class:`LoadSampler` reads, every ``period_s``, the controller process's
CPU ticks (``/proc/<pid>/stat``) and each switch's flow count (``ovs-ofctl dump-aggregate``):
one row per sample, the CPU share over the period before it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common import requestlog
from common.plan import AddressPlan
from lab.fidelity import process_cpu_ticks
from lab.lifecycle import Lab
from lab.runstate import pid_alive

log = logging.getLogger(__name__)

REACH_POLL_S = 0.5
LOAD_PERIOD_S = 5.0
_FLOW_COUNT = re.compile(r"flow_count=(\d+)")


# --- pure -------------------------------------------------------------------------------------
def first_reaches(records: Iterable[requestlog.RequestRecord], attacker_ip: str,
                  plcs: Iterable[str], since_unix_s: float = 0.0) -> dict[str, float]:
    """PLC → when its own log first shows an answered request from ``attacker_ip`` at or after
    ``since_unix_s`` (PLCs not reached are absent)."""
    wanted = set(plcs)
    out: dict[str, float] = {}
    for r in records:
        if (r.answered and r.client_ip == attacker_ip and r.plc in wanted
                and r.t_unix_s >= since_unix_s):
            out[r.plc] = min(out.get(r.plc, math.inf), r.t_unix_s)
    return out


def all_reached_at(first: dict[str, float], plcs: Iterable[str]) -> float | None:
    """When the last of ``plcs`` was first reached; None while one is not (or none given)."""
    names = list(plcs)
    if not names or any(p not in first for p in names):
        return None
    return max(first[p] for p in names)


def flow_count(dump_aggregate: str) -> int:
    """The flow count in ``ovs-ofctl dump-aggregate`` output; ValueError when absent."""
    m = _FLOW_COUNT.search(dump_aggregate)
    if m is None:
        raise ValueError("no flow_count in ovs-ofctl output")
    return int(m.group(1))


def cpu_pct(ticks_before: int, ticks_after: int, wall_s: float, ticks_per_s: float) -> float:
    """The share of one core (%) that ``ticks_after - ticks_before`` is over ``wall_s``."""
    if not wall_s > 0:
        return math.nan
    return 100.0 * (ticks_after - ticks_before) / ticks_per_s / wall_s


# --- I/O --------------------------------------------------------------------------------------
def read_flow_count(bridge: str, timeout_s: float = 10.0) -> int | None:
    """The flows in ``bridge`` now (``ovs-ofctl dump-aggregate``); None when unreadable."""
    try:
        res = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", bridge],
                             capture_output=True, text=True, timeout=timeout_s, check=False)
        return flow_count(res.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


class _Tail:
    """The complete lines appended to a file since the last call (a torn last line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].decode(errors="replace").splitlines()


class ReachWatch:
    """A thread that follows the PLCs' request logs in ``raw`` and, once every PLC has been
    reached from ``attacker_ip``, sends SIGUSR1 to the recorded process ``process_what`` (when
    ``stop``; otherwise it only records the time).

    all_reached_unix_s: the PLC-log time of the last PLC's first reach (None: not all).
    stop_sent_unix_s: when the signal went (None: not sent).
    """

    def __init__(self, lab: Lab, raw: Path, plan: AddressPlan, attacker_ip: str,
                 process_what: str, stop: bool, poll_s: float = REACH_POLL_S) -> None:
        self._lab = lab
        self._plcs = [h.name for h in plan.hosts_with_role("plc")]
        self._tails = [_Tail(requestlog.log_path(raw, p)) for p in self._plcs]
        self._attacker_ip = attacker_ip
        self._what = process_what
        self._stop = stop
        self._poll_s = poll_s
        self._since_unix_s = time.time()
        self._first: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reach-watch", daemon=True)
        self.all_reached_unix_s: float | None = None
        self.stop_sent_unix_s: float | None = None

    def __enter__(self) -> ReachWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._done.wait(self._poll_s):
            try:
                if self._poll():
                    return
            except Exception:  # a watcher must never take the trial down
                log.exception("reach watch failed; no early stop in this condition")
                return

    def _poll(self) -> bool:
        """Read what the logs added; True once there is nothing left to do."""
        recs = requestlog.parse(line for t in self._tails for line in t.new_lines())
        for plc, t in first_reaches(recs, self._attacker_ip, self._plcs,
                                    self._since_unix_s).items():
            self._first[plc] = min(self._first.get(plc, math.inf), t)
        at = all_reached_at(self._first, self._plcs)
        if at is None:
            return False
        self.all_reached_unix_s = at
        if not self._stop:
            return True
        procs = [p for p in list(self._lab.state.processes) if p.what == self._what]
        for p in procs:
            if pid_alive(p.pid, p.start_ticks):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGUSR1)
                    self.stop_sent_unix_s = time.time()
                    log.info("every PLC reached (PLC logs): SIGUSR1 to %s (pid %d)",
                             self._what, p.pid)
        return True


class LoadSampler:
    """A thread that samples, every ``period_s``, the controller's CPU share over the period
    and each switch's flow count: ``rows`` (``t_unix_s``, ``controller_cpu_pct``,
    ``flows_<switch>``, ``flows_total``; a value that could not be read is NaN)."""

    def __init__(self, lab: Lab, period_s: float = LOAD_PERIOD_S) -> None:
        self._lab = lab
        self._pid = lab.controller.pid if lab.controller is not None else None
        self._bridges = {sw.name: lab.cfg.switch_prefix + sw.name for sw in lab.plan.switches}
        self._period_s = period_s
        self._ticks_per_s = float(os.sysconf("SC_CLK_TCK"))
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)
        self.rows: list[dict[str, Any]] = []
        self._failed = False
        self._before: int | None = None
        self._t_before = 0.0

    def __enter__(self) -> LoadSampler:
        self._before, self._t_before = self._ticks(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=15.0)
        if not self._thread.is_alive() and not self._failed:
            try:  # the last, partial period: a short condition still has a row
                self._sample()
            except Exception:
                log.exception("load sampler: the last sample failed")

    def _ticks(self) -> int | None:
        if self._pid is None:
            return None
        try:
            return process_cpu_ticks(Path(f"/proc/{self._pid}/stat").read_text())
        except (OSError, ValueError):
            return None

    def _flows(self, bridge: str) -> float:
        count = read_flow_count(bridge)
        return math.nan if count is None else float(count)

    def _sample(self) -> None:
        ticks, t_now = self._ticks(), time.monotonic()
        pct = (cpu_pct(self._before, ticks, t_now - self._t_before, self._ticks_per_s)
               if self._before is not None and ticks is not None else math.nan)
        self._before, self._t_before = ticks, t_now
        flows = {name: self._flows(br) for name, br in self._bridges.items()}
        self.rows.append({"t_unix_s": time.time(), "controller_cpu_pct": pct,
                          **{f"flows_{k}": v for k, v in flows.items()},
                          "flows_total": sum(flows.values())})

    def _run(self) -> None:
        while not self._done.wait(self._period_s):
            try:
                self._sample()
            except Exception:  # sampling must never take the trial down
                self._failed = True
                log.exception("load sampler failed; no more samples in this condition")
                return
