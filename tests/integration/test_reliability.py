"""Reliability: interrupts at random moments, one run at a time, faults during a run.

Figures are printed (run with -s to see them): runs interrupted, leftovers found.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.runstate import STATE_DIR, RunState
from lab.teardown import existing_bridges
from tests.support.names import PORT_PREFIXES, SWITCHES, own_states

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INTERRUPTS = 10
SEED = 20261129


def start(*args: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "experiments.run", *args, "--out", str(out)],
                            cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def lab_state(timeout_s: float = 60, proc: subprocess.Popen[str] | None = None) -> RunState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in STATE_DIR.glob("lab-*.json"):
            try:
                st = RunState.load(path)
            except (OSError, ValueError):
                continue
            if SWITCHES <= set(st.bridges) and SWITCHES <= existing_bridges():
                return st
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError("no lab came up")


def leftovers() -> list[str]:
    left = [f"bridge {b}" for b in SWITCHES & existing_bridges()]
    left += [f"state {n}" for n in own_states()]
    left += [f"intf {p.name}" for p in Path("/sys/class/net").iterdir()
             if p.name.startswith(PORT_PREFIXES)]
    return left


def finish(proc: subprocess.Popen[str], timeout_s: float = 90) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_interrupts_at_random_moments_leave_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    completed_seen = 0
    for i in range(INTERRUPTS):
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
        out = tmp_path / f"run{i}"
        proc = start("recon", "--trials", "3", "--quick", out=out)
        st = lab_state(proc=proc)
        pids = [(p.pid, p.start_ticks) for p in st.processes]
        time.sleep(rng.uniform(0.0, 6.0))  # anywhere in trial 1, between trials, or trial 2
        proc.send_signal(sig)
        _out, err = finish(proc)
        assert proc.returncode in (130, 0), f"run {i}: exit {proc.returncode}: {err}"
        assert "Traceback" not in err, err
        left = leftovers()
        from lab.runstate import pid_alive

        left += [f"pid {pid}" for pid, ticks in pids if pid_alive(pid, ticks)]
        assert not left, f"run {i} ({sig.name}) left {left}"
        bundle = (out / "recon" / "latest").resolve()
        manifest = json.loads((bundle / "manifest.json").read_text())
        ok = [t for t in manifest["trials"] if t["status"] == "ok"]
        completed_seen += len(ok)
        if ok:  # every completed trial's rows are readable in the bundle
            lines = (bundle / "recon_hosts.csv").read_text().splitlines()
            trials_in_csv = {ln.split(",")[0] for ln in lines[1:]}
            assert {str(t["trial"]) for t in ok} <= trials_in_csv
        assert manifest["interrupted"] or proc.returncode == 0
    print(f"\ninterrupted runs: {INTERRUPTS}, leftovers found: 0, "
          f"completed trials kept: {completed_seen}")


def test_second_run_refused_while_first_runs(tmp_path: Path) -> None:
    first = start("ics", "--quick", "--duration-s", "6", out=tmp_path / "a")
    try:
        lab_state(proc=first)
        second = subprocess.run([sys.executable, "-m", "experiments.run", "rtt", "--quick",
                                 "--out", str(tmp_path / "b")], cwd=REPO, capture_output=True,
                                text=True, timeout=60, check=False)
        assert second.returncode == 2
        assert "another run is active" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        _out, err = finish(first)
        assert first.returncode == 0, err  # the first run was not disturbed
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("victim", ["controller", "plc1"])
def test_component_dies_trial_fails_run_goes_on(tmp_path: Path, victim: str) -> None:
    proc = start("ics", "--trials", "2", "--duration-s", "5", out=tmp_path)
    try:
        st = lab_state(proc=proc)
        deadline = time.monotonic() + 20
        target = None
        while target is None and time.monotonic() < deadline:
            st = RunState.load(st.path)
            target = next((p for p in st.processes
                           if p.what == victim or p.what == f"{victim}:plc.server"), None)
            time.sleep(0.1)
        assert target is not None, [p.what for p in st.processes]
        time.sleep(1.0)
        os.kill(target.pid, signal.SIGKILL)  # a pid this run recorded, not a name
        _out, err = finish(proc, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    manifest = json.loads(((tmp_path / "ics" / "latest") / "manifest.json").read_text())
    statuses = [t["status"] for t in manifest["trials"]]
    print(f"{victim} killed: trials {statuses}; cause: {manifest['trials'][0].get('error')}")
    assert statuses == ["failed", "ok"]
    cause = manifest["trials"][0]["error"]
    assert ("controller" in cause) if victim == "controller" else ("plc1" in cause)
    summary = json.loads(((tmp_path / "ics" / "latest") / "summary.json").read_text())
    assert summary["trials_failed"] == 1 and summary["failures"]
    assert not leftovers()
