"""Run a program in an emulated host and wait for it: the one helper experiments and lab mode
share for attacks (and any other bounded program in a host).

It bounds the wait, always stops and releases the process (log file closed, pid dropped from
the run state), stops it too when an interrupt arrives, and reads the outcome JSON it wrote.
A fix to any of these lands here once.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import Interrupted, LabError
from lab.lifecycle import Lab

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class HostRun:
    """How one program in a host ended.

    what: the name errors use (a module name or a short label).
    code: its exit status; after an early stop, what it returned to SIGTERM/SIGKILL.
    stopped: why it was stopped before it exited: "" (it exited by itself), "timeout" or
        "interrupt" (Ctrl-C, only when the caller asked to catch it).
    """

    what: str
    code: int | None
    stopped: str
    timeout_s: float
    log_path: Path

    @property
    def ok(self) -> bool:
        return not self.stopped and self.code == 0

    @property
    def note(self) -> str:
        """Why it was stopped, for a person ("" when it exited by itself)."""
        if self.stopped == "timeout":
            return f"stopped after {self.timeout_s:g} s"
        if self.stopped == "interrupt":
            return "stopped by Ctrl-C"
        return ""

    def last_log_line(self) -> str:
        """The log's last non-empty line, "" when there is none."""
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return text.splitlines()[-1] if text else ""

    def check_finished(self) -> None:
        """LabError when it had to be stopped at the time-out."""
        if self.stopped == "timeout":
            raise LabError(f"{self.what} did not finish within {self.timeout_s:g} s")

    def check(self) -> None:
        """LabError when it was stopped or exited non-zero (naming its log's last line)."""
        self.check_finished()
        if self.code != 0:
            raise LabError(f"{self.what} exited with {self.code}: "
                           f"{self.last_log_line() or '(no output)'}")

    def outcome(self, path: Path) -> dict[str, Any]:
        """The outcome JSON object the program wrote; LabError when missing or unreadable."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.what} outcome unreadable (exit {self.code}): {exc}"
                           ) from None
        if not isinstance(data, dict):
            raise LabError(f"{self.what} outcome unreadable (exit {self.code}): "
                           "not a JSON object")
        return data


def wait_in_host(lab: Lab, proc: subprocess.Popen[bytes], what: str, log_path: Path,
                 timeout_s: float, *, catch_interrupt: bool = False,
                 grace_s: float = STOP_GRACE_S) -> HostRun:
    """Wait for ``proc`` (started by ``lab`` in a host) at most ``timeout_s``, then stop it.

    The process is always stopped and released, whichever way the wait ends. An interrupt
    (Ctrl-C, SIGTERM) stops it and propagates, unless ``catch_interrupt`` (lab mode: the
    prompt goes on), in which case Ctrl-C is reported as ``stopped == "interrupt"``.
    """
    stopped = ""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stopped = "timeout"
        log.info("%s: still running after %g s, stopping it", what, timeout_s)
    except KeyboardInterrupt:
        if not catch_interrupt:
            lab.stop(proc, grace_s=grace_s)
            raise
        stopped = "interrupt"
    except Interrupted:
        lab.stop(proc, grace_s=grace_s)
        raise
    code = lab.stop(proc, grace_s=grace_s)
    return HostRun(what, code, stopped, timeout_s, log_path)


def run_in_host(lab: Lab, host: str, module: str, args: Sequence[str], log_name: str,
                timeout_s: float, *, what: str = "", catch_interrupt: bool = False,
                grace_s: float = STOP_GRACE_S) -> HostRun:
    """``python -m module args`` inside ``host``, waited for as :func:`wait_in_host` does.

    log_name: the program's output file, relative to the lab's log folder.
    """
    proc = lab.python(host, module, args, log_name)
    return wait_in_host(lab, proc, what or module, lab.log_dir / log_name, timeout_s,
                        catch_interrupt=catch_interrupt, grace_s=grace_s)
