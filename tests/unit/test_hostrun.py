"""The one "run in a host and wait" helper: bounded wait, always stopped, outcome read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import LabError
from lab.hostrun import run_in_host


class FakeLab:
    """Runs "in a host" as a plain child process; records what it stopped."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.stopped: list[int] = []

    def python(self, host: str, module: str, args: list[str], log_name: str
               ) -> subprocess.Popen[bytes]:
        with open(self.log_dir / log_name, "ab") as logf:
            return subprocess.Popen([sys.executable, "-c", module, *args], stdout=logf,
                                    stderr=subprocess.STDOUT)

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> int | None:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=grace_s)
        self.stopped.append(proc.pid)
        return proc.returncode


def test_exit_and_outcome_read(tmp_path: Path) -> None:
    lab = FakeLab(tmp_path)
    out = tmp_path / "o.json"
    code = f"import json; json.dump({{'writes_ok': 3}}, open({str(out)!r}, 'w'))"
    run = run_in_host(lab, "h1", code, [], "a.log", 30, what="inject")  # type: ignore[arg-type]
    run.check()
    assert run.ok and run.code == 0 and run.note == ""
    assert run.outcome(out) == {"writes_ok": 3}
    assert len(lab.stopped) == 1  # released even when it exited by itself


def test_timeout_stops_and_names_the_bound(tmp_path: Path) -> None:
    lab = FakeLab(tmp_path)
    run = run_in_host(lab, "h1", "import time; time.sleep(30)", [], "a.log",  # type: ignore
                      0.3, what="attacks.recon")
    assert run.stopped == "timeout" and run.note == "stopped after 0.3 s"
    assert lab.stopped
    with pytest.raises(LabError, match=r"attacks\.recon did not finish within 0\.3 s"):
        run.check()


def test_failure_names_the_last_log_line(tmp_path: Path) -> None:
    lab = FakeLab(tmp_path)
    run = run_in_host(lab, "h1", "print('first'); print('no target found'); raise "  # type: ignore
                      "SystemExit(4)", [], "a.log", 30)
    with pytest.raises(LabError, match="exited with 4: no target found"):
        run.check()
    with pytest.raises(LabError, match=r"outcome unreadable \(exit 4\)"):
        run.outcome(tmp_path / "missing.json")
