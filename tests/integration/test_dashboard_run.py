"""``python -m experiments.run rtt --quick --dashboard 0``, as docs/dashboard.md shows it: the
dashboard the runner starts shows the trial and its stage while the run lasts (read from
/api/snapshot at the printed URL), and nothing of it is left when the run ends."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dashboard import progresslog
from dashboard.source import ReplaySource
from lab.runstate import all_states
from tests.support.doc_commands import block_run_by

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 90.0
DOC = "docs/dashboard.md"


def _doc_argv() -> list[str]:
    """The arguments after ``python -m`` of the documented command."""
    (block,) = block_run_by("tests/integration/test_dashboard_run.py", DOC)
    (command,) = block.commands()
    words = command.split()
    assert words[:3] == ["sudo", ".venv/bin/python", "-m"], command
    assert words[3:6] == ["experiments.run", "rtt", "--quick"] and "--dashboard" in words
    return words[3:]


def _snapshot(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}api/snapshot", timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError):
        return None  # the run ended and the dashboard with it


def test_experiment_dashboard_shows_trial_and_stage_live(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", *_doc_argv(), "--out", str(tmp_path / "results")], cwd=REPO,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    snaps: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        url = ""
        while not url:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(line)
            m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else ""
        pids = {p.pid for s in all_states() if s.run_id.startswith(f"dashboard-{proc.pid}-")
                for p in s.processes}
        while proc.poll() is None and time.monotonic() < deadline:
            snap = _snapshot(url)
            if snap is not None:
                snaps.append(snap)
            time.sleep(0.2)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        while not lines.empty():
            seen.append(lines.get())
        (tmp_path / "transcript.txt").write_text("".join(seen))
    assert proc.returncode == 0, "".join(seen)[-3000:]
    live = [s["progress"] for s in snaps if s["progress"]]
    assert any(p["trial"] == 1 and p["stage"].startswith("ping ") for p in live), live[-3:]
    assert any(s["run"] == "trial-001" and s["plcs"] for s in snaps), "no PLC trend shown"
    # Gone at the end: the process, its run-state record, the port.
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not [s for s in all_states() if s.run_id.startswith(f"dashboard-{proc.pid}-")]
    assert _snapshot(url) is None
    (bundle,) = (tmp_path / "results" / "rtt").glob("2*")
    events = progresslog.parse((bundle / "raw" / progresslog.PROGRESS_LOG).read_text()
                               .splitlines())
    assert [e.outcome for e in events if e.event == "done"] == ["ok"]
    replay = ReplaySource(bundle, speed=20)
    assert replay.snapshot(replay.end_unix_s)["progress"]["finished"]
