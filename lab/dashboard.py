"""Starting and stopping the dashboard process (``--dashboard [PORT]``) for a lab or a run.

The dashboard (``python -m dashboard FOLDER``) runs in the root namespace, bound to
127.0.0.1, reading the folder the lab writes. Its pid goes into a run-state record of its own
(:mod:`lab.runstate`) before anything else happens, so teardown, and ``experiments.clean``
after a crash, stop exactly it. The lab does not import the dashboard: it starts it by module
name, as it starts every other program.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from common.cli import wait_until
from common.errors import LabError
from lab.processes import signals_deferred, terminate
from lab.runstate import RunState
from lab.teardown import remove_recorded

DEFAULT_PORT = 8765
READY_TIMEOUT_S = 15.0
LOG_NAME = "dashboard.log"


@dataclass
class DashboardProcess:
    """A running dashboard: its process, run-state record and URL."""

    proc: subprocess.Popen[bytes]
    state: RunState
    url: str

    def stop(self) -> None:
        """SIGTERM, wait, then remove whatever the record still lists."""
        terminate(self.proc)
        self.state.drop_process(self.proc.pid)
        remove_recorded(self.state)
        self.state.remove()


def port_free(port: int) -> bool:
    """Whether the dashboard could listen on 127.0.0.1:PORT now (0, any free port: True).

    Checked before a run creates anything, so a taken port is a one-line error and no
    bundle; the dashboard's own bind can still lose a race (start_dashboard's LabError).
    """
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_dashboard(folder: Path, port: int, log_dir: Path,
                    timeout_s: float = READY_TIMEOUT_S) -> DashboardProcess:
    """Start ``python -m dashboard FOLDER --port PORT`` and wait until it listens.

    LabError (with its last log line) when it exits or does not listen in time, e.g. when
    the port is taken.
    """
    state = RunState.new(f"dashboard-{os.getpid()}-{uuid.uuid4().hex[:8]}", log_dir)
    log_path = log_dir / LOG_NAME
    with open(log_path, "ab") as logf, signals_deferred():
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "dashboard", str(folder), "--port", str(port)],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        state.add_process(proc.pid, "dashboard")
    running = DashboardProcess(proc, state, "")

    def ready() -> str | None:
        text = log_path.read_text(errors="replace")
        m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", text)
        if m:
            return m.group(1)
        if proc.poll() is not None:
            lines = text.strip().splitlines()
            running.stop()
            raise LabError(f"dashboard exited: {lines[-1] if lines else 'no output'}")
        return None

    url = wait_until(ready, timeout_s, interval_s=0.05)
    if not url:
        running.stop()
        raise LabError(f"dashboard: not listening within {timeout_s:g} s")
    running.url = url
    return running
