"""A real ``python -m plc.server`` child on 127.0.0.1 for unit tests that need a live PLC."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from common.cli import wait_until
from common.groundtruth import GroundTruthRow, read_ground_truth_file

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


class PlcProcess:
    """A ``python -m plc.server`` child on 127.0.0.1, any free port; stopped by its pid."""

    def __init__(self, tmp_path: Path, process: str, *extra: str) -> None:
        self.stderr_path = tmp_path / f"plc-{process}.log"
        self.state_csv = tmp_path / f"state-{process}.csv"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plc.server", "--process", process, "--host", LOOPBACK,
             "--port", "0", "--state-csv", str(self.state_csv), *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.port = self._wait_ready(process)

    def _wait_ready(self, process: str, timeout_s: float = 10.0) -> int:
        ready = re.compile(rf"plc ready process={process} port=(\d+)")

        def ready_or_exited() -> re.Match[str] | bool:
            return ready.search(self.stderr_path.read_text()) or self.proc.poll() is not None

        found = wait_until(ready_or_exited, timeout_s, interval_s=0.05)
        if isinstance(found, re.Match):
            return int(found.group(1))
        self.stop()
        raise AssertionError(f"PLC not ready: {self.stderr_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._stderr.close()

    def rows(self) -> list[GroundTruthRow]:
        """The PLC's ground-truth rows so far, every value as a float (a torn last line
        skipped: compare with the file's line count to catch one)."""
        return read_ground_truth_file(self.state_csv)
