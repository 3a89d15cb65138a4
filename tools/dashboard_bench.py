"""Measure the dashboard: first snapshot time with ten minutes of history, page + snapshot
load time, and the server's idle CPU (% of one core). Prints the figures (docs/dashboard.md).

    .venv/bin/python tools/dashboard_bench.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.dashboard_runs import write_run  # noqa: E402

IDLE_S = 10.0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        write_run(run, t0_unix_s=time.time() - 600, duration_s=600.0, hops=60)
        proc = subprocess.Popen([sys.executable, "-m", "dashboard", str(run), "--port", "0"],
                                cwd=REPO, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert proc.stdout is not None
            url = re.search(r"(http://\S+/)", proc.stdout.readline()).group(1)
            t0 = time.perf_counter()
            page = urllib.request.urlopen(url).read()
            snap = urllib.request.urlopen(url + "api/snapshot").read()
            first_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            urllib.request.urlopen(url).read()
            urllib.request.urlopen(url + "api/snapshot").read()
            next_ms = (time.perf_counter() - t0) * 1000
            before = cpu_ticks(proc.pid)
            time.sleep(IDLE_S)
            idle_pct = 100 * (cpu_ticks(proc.pid) - before) / os.sysconf("SC_CLK_TCK") / IDLE_S
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"page {len(page) / 1024:.1f} KiB, snapshot {len(snap) / 1024:.1f} KiB "
          "(10 min of history, 6000 PLC rows, 600 HMI polls, 60 hops)")
    print(f"page + first snapshot: {first_ms:.0f} ms; again: {next_ms:.0f} ms")
    print(f"server idle CPU over {IDLE_S:g} s with no page open: {idle_pct:.2f} % of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
