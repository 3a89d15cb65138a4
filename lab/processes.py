"""Process supervision of a lab: what runs inside its hosts is started and recorded, watched,
and stopped.

:class:`HostProcesses` starts programs inside the hosts' namespaces, records each pid in the
run state before it returns (:func:`signals_deferred` keeps an interrupt from falling between
the fork and the record), waits for their log lines, and stops them, one by one or all at
teardown. The network itself is :mod:`lab.network`'s; the controller process and the order of
it all are :mod:`lab.lifecycle`'s.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from common.cli import wait_until
from common.errors import LabError
from lab.runstate import RunState

log = logging.getLogger(__name__)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a process is started and recorded, then deliver them.

    An interrupt between a child's fork and its run-state entry would leave a process no
    teardown knows of (seen: a PLC server outliving an interrupted run). Blocking the signals
    instead is no option: children inherit the signal mask. Main thread only; elsewhere a
    no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            os.kill(os.getpid(), pending[0])


def exit_description(code: int | None) -> str:
    """``-9`` → ``killed by SIGKILL``; ``1`` → ``exit status 1``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def log_tail(path: Path, n_lines: int = 5) -> str:
    """The last ``n_lines`` of a log joined with `` | `` (for a one-line error); '' if unread."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n_lines:])


def terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0,
              signalled: bool = False) -> int | None:
    """SIGTERM a process, wait ``grace_s``, SIGKILL it if it does not go; its exit status.
    signalled: SIGTERM was already sent (only wait, then kill).

    Only for a process this lab started (a Popen of ours: its pid cannot have been reused).
    """
    if proc.poll() is None:
        if not signalled:
            proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


class HostProcesses:
    """The processes a lab starts inside its hosts, each recorded in ``state`` while it runs.

    ``host(name)`` gives the Mininet node a program runs in: the lab that owns the network
    provides it. Logs go to ``log_dir``.
    """

    def __init__(self, state: RunState, log_dir: Path) -> None:
        self.state = state
        self._log_dir = log_dir
        self._procs: list[tuple[subprocess.Popen[bytes], str, IO[bytes]]] = []

    @property
    def log_dir(self) -> Path:
        """Where the processes started now write their logs (a kept lab's changes per trial)."""
        return self._log_dir

    def host(self, name: str):  # -> mininet.node.Host
        raise NotImplementedError

    def popen(self, host_name: str, args: Sequence[str], log_name: str,
              env: dict[str, str] | None = None, what: str = "") -> subprocess.Popen[bytes]:
        """Start ``args`` inside ``host_name``'s namespace; output goes to ``log_dir/log_name``.

        The pid is recorded before this returns and the process is stopped at teardown.
        """
        host = self.host(host_name)
        logf = open(self._log_dir / log_name, "ab")
        with signals_deferred():
            proc = host.popen(list(args), stdout=logf, stderr=subprocess.STDOUT,
                              env=env or os.environ.copy())
            self.state.add_process(proc.pid, f"{host_name}:{what or Path(args[0]).name}")
            self._procs.append((proc, host_name, logf))
        return proc

    def run(self, host_name: str, args: Sequence[str], timeout_s: float
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a host and wait, bounded by ``timeout_s``.

        Output is read through a pipe and decoded leniently, not through Mininet's shell pty
        (``host.cmd``), which has no time-out and fails on a stray non-UTF-8 byte.
        """
        host = self.host(host_name)
        with signals_deferred():
            proc = host.popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.state.add_process(proc.pid, f"{host_name}:{Path(args[0]).name}")
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise LabError(f"{host_name}: {' '.join(args)} did not finish within "
                           f"{timeout_s:g} s") from None
        finally:
            self.state.drop_process(proc.pid)
        return subprocess.CompletedProcess(list(args), proc.returncode,
                                           out.decode(errors="replace"), "")

    def python(self, host_name: str, module: str, args: Sequence[str], log_name: str
               ) -> subprocess.Popen[bytes]:
        """Run ``python -m module args`` inside a host with this interpreter."""
        return self.popen(host_name, [sys.executable, "-u", "-m", module, *args], log_name,
                          what=module)

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0,
             signalled: bool = False) -> int | None:
        """SIGTERM a process this lab started, wait, SIGKILL if it does not go."""
        terminate(proc, grace_s, signalled)
        for i, (p, _h, logf) in enumerate(self._procs):
            if p is proc:
                logf.close()
                del self._procs[i]
                break
        self.state.drop_process(proc.pid)
        return proc.returncode

    def stop_all(self, grace_s: float = 3.0) -> None:
        """:meth:`stop` every process still running, logging (not raising) what fails.
        All get SIGTERM first, so they wind down together rather than one after another."""
        signalled = set()
        for proc, _h, _f in self._procs:
            if proc.poll() is None:
                try:
                    proc.terminate()
                    signalled.add(proc.pid)
                except OSError as exc:
                    log.warning("signalling pid %s: %s", proc.pid, exc)
        for proc, _h, _f in list(self._procs):
            try:
                self.stop(proc, grace_s=grace_s, signalled=proc.pid in signalled)
            except Exception as exc:  # keep tearing down whatever fails
                log.warning("stopping pid %s: %s", proc.pid, exc)

    def wait_for_log(self, log_name: str, needle: str, timeout_s: float,
                     proc: subprocess.Popen[bytes] | None = None) -> None:
        """Poll a process log until ``needle`` appears; LabError on timeout or early exit."""
        path = self._log_dir / log_name

        def seen() -> bool:
            try:
                if needle in path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            if proc is not None and proc.poll() is not None:
                raise LabError(f"{log_name}: process exited with {proc.returncode} before "
                               f"'{needle}': {log_tail(path)}")
            return False

        # Every trial waits for its PLCs' readiness lines: poll often (a small file's read).
        if not wait_until(seen, timeout_s, interval_s=0.01):
            raise LabError(f"{log_name}: no '{needle}' within {timeout_s:g} s: {log_tail(path)}")
