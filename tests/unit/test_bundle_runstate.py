"""Bundles, run-state records, the run lock and the lab's planned names (no root)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from common.plan import plan_for
from experiments.runner import summary_table, trial_seed
from lab.lock import RunLock
from lab.network import planned_interfaces
from lab.runstate import RunState, pid_alive, proc_start_ticks
from reporting.bundle import Bundle, read_csv
from topologies.base import PlanTopo


def test_bundle_rows_are_on_disk_after_each_append(tmp_path: Path) -> None:
    b = Bundle.create(tmp_path, "demo")
    assert b.path.parent == tmp_path / "demo" and (b.path / "raw").is_dir()
    b.append_rows("rtt", [{"trial": 1, "rtt_ms": 1.5}])
    rows = list(csv.DictReader(open(b.path / "rtt.csv")))
    assert rows == [{"trial": "1", "rtt_ms": "1.5"}]
    b.append_rows("rtt", [{"trial": 2, "rtt_ms": float("nan"), "loss_pct": 0.0}])
    rows = list(csv.DictReader(open(b.path / "rtt.csv")))
    assert [r["trial"] for r in rows] == ["1", "2"]
    assert rows[1]["rtt_ms"] == "" and rows[0]["loss_pct"] == ""
    assert not [p for p in b.path.iterdir() if p.name.startswith(".")]  # no temp files left
    b.link_latest(tmp_path)
    assert (tmp_path / "latest").resolve() == b.path.resolve()


def test_bundle_unwritable_root_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write results"):
        Bundle.create(blocker, "demo")


def test_json_has_no_nan(tmp_path: Path) -> None:
    b = Bundle.create(tmp_path, "demo")
    b.write_json("summary.json", {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads((b.path / "summary.json").read_text()) == {"x": None, "y": [1.0, None]}


def test_runstate_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.runstate.STATE_DIR", tmp_path)
    st = RunState.new("t1")
    st.add_bridges(["s1", "s2"])
    st.add_interfaces(["s1-eth1"])
    st.add_process(os.getpid(), "me")
    loaded = RunState.load(tmp_path / "t1.json")
    assert loaded.bridges == ["s1", "s2"] and loaded.interfaces == ["s1-eth1"]
    assert loaded.processes[0].pid == os.getpid() and loaded.owner_alive()
    st.remove()
    assert not (tmp_path / "t1.json").exists()


def test_pid_identity_uses_start_time() -> None:
    me = os.getpid()
    assert pid_alive(me, proc_start_ticks(me))
    assert not pid_alive(me, (proc_start_ticks(me) or 0) + 1)  # a recycled pid is not ours
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid, None)


def test_run_lock_refuses_second_and_clears_stale(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with RunLock("first", path):
        with pytest.raises(UserError, match="another run is active"):
            RunLock("second", path).__enter__()
    assert not path.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({"pid": dead.pid, "start_ticks": 1, "what": "crashed"}))
    with RunLock("third", path):  # stale lock of a dead process: cleared
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_planned_interfaces_match_mininet_naming() -> None:
    names = planned_interfaces(PlanTopo(plan_for("ics")))
    assert names[0] == "s1-eth1" and "s2-eth1" in names  # the trunk
    assert len(names) == 2 + 6 and len(set(names)) == len(names)


def test_trial_seed_deterministic() -> None:
    assert trial_seed(1, 1) == trial_seed(1, 1)
    assert trial_seed(1, 1) != trial_seed(1, 2) != trial_seed(2, 1)


def test_summary_table_formats() -> None:
    text = summary_table({"conditions": {"all": {"host_recall": {
        "kind": "proportion", "mean": 1.0, "ci_low": 0.4385, "ci_high": 1.0, "n": 3, "k": 3,
        "trials": 3, "method": "wilson"}}}})
    assert "host_recall" in text and "1.00 [0.44, 1.00]" in text and "3/3" in text
    assert "wilson" in text and "±" not in text


def test_csv_keeps_unix_times_to_the_microsecond(tmp_path: Path) -> None:
    b = Bundle.create(tmp_path, "demo")
    b.append_rows("hops", [{"t_unix_s": 1796206757.123456, "rtt_ms": 0.0123456789,
                            "n": 3.0, "ok": True}])
    row = read_csv(b.path / "hops.csv")[0]
    assert row == {"t_unix_s": "1796206757.123456", "rtt_ms": "0.0123457", "n": "3",
                   "ok": "true"}
