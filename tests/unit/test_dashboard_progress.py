"""The runner's progress log and ``--dashboard`` without a network: the records the runner
writes into ``raw/progress.jsonl``, what the dashboard makes of them, and a real dashboard
process started and stopped by the runner around a fake experiment (no root, no Mininet)."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from common.errors import Interrupted, UserError
from dashboard import progresslog
from dashboard.snapshot import progress_json
from dashboard.source import LiveSource, ReplaySource
from experiments import runner
from experiments.progress import LoggedProgress, Progress, QuietProgress
from experiments.registry import get_experiment
from experiments.run import experiment_parser
from experiments.spec import Experiment, TrialResult, resolve_config
from lab import platform, runstate
from lab.dashboard import DEFAULT_PORT, port_free

REPO = Path(__file__).resolve().parents[2]


def _events(path: Path) -> list[progresslog.ProgressEvent]:
    return progresslog.parse(path.read_text().splitlines())


def test_logged_progress_writes_every_event_and_still_prints(tmp_path: Path) -> None:
    out = io.StringIO()
    log = tmp_path / "progress.jsonl"
    prog = LoggedProgress(Progress(out), log)
    prog.start(2)
    prog.trial_started(1, "trial 1 [rhm]", 1, "rhm", "raw/trial-001/rhm")
    prog.stage("reconnaissance")
    prog.trial_done(1, "ok in 3.0 s", "ok")
    prog.trial_started(2, "trial 1 [none]", 1, "none", "raw/trial-001/none")
    prog.trial_done(2, "FAILED: LabError: x", "failed")
    prog.finish()
    assert "[1/2] trial 1 [rhm]: reconnaissance" in out.getvalue()
    events = _events(log)
    assert [e.event for e in events] == ["start", "trial", "stage", "done", "trial", "done",
                                         "finish"]
    first = events[1]
    assert (first.run, first.total, first.trial, first.condition, first.raw_dir) == (
        1, 2, 1, "rhm", "raw/trial-001/rhm")
    assert events[2].text == "reconnaissance" and events[2].label == "trial 1 [rhm]"
    assert [e.outcome for e in events if e.event == "done"] == ["ok", "failed"]


def test_quiet_progress_logs_and_still_shows_notices(tmp_path: Path) -> None:
    out = io.StringIO()
    prog = LoggedProgress(QuietProgress(out), tmp_path / "p.jsonl")
    prog.start(1)
    prog.stage("x")
    prog.notice("dashboard: http://127.0.0.1:1/")
    assert out.getvalue() == "dashboard: http://127.0.0.1:1/\n"
    assert len(_events(tmp_path / "p.jsonl")) == 2


def test_unwritable_progress_log_does_not_stop_the_run(tmp_path: Path) -> None:
    prog = LoggedProgress(QuietProgress(io.StringIO()), tmp_path / "missing" / "p.jsonl")
    prog.start(1)
    prog.stage("still running")
    assert prog._write_failed


def test_records_without_the_new_fields_still_parse() -> None:
    old = json.dumps({"time_unix_s": 1.0, "event": "trial", "run": 1, "total": 2,
                      "label": "trial 1", "raw_dir": "raw/trial-001"})
    (event,) = progresslog.parse([old, "{torn", json.dumps({"event": "other"})])
    assert (event.trial, event.condition, event.outcome) == (0, "", "")


def test_snapshot_progress_names_trial_condition_stage_and_outcomes(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    progresslog.append(log, "start", 0.0, total=3)
    for run, (cond, outcome) in enumerate((("none", "ok"), ("rhm", "invalid")), start=1):
        progresslog.append(log, "trial", run * 10.0, run=run, total=3, trial=1,
                           condition=cond, raw_dir=f"raw/trial-001/{cond}")
        progresslog.append(log, "stage", run * 10.0 + 1, run=run, total=3, text="scan")
        progresslog.append(log, "done", run * 10.0 + 5, run=run, total=3, text=outcome,
                           outcome=outcome)
    progresslog.append(log, "trial", 30.0, run=3, total=3, trial=2, condition="none",
                       raw_dir="raw/trial-002/none")
    events = _events(log)
    mid = progress_json(events, 22.0)
    assert mid is not None
    assert (mid["trial"], mid["condition"], mid["stage"]) == (1, "rhm", "scan")
    assert mid["outcomes"] == {"ok": 1, "invalid": 0, "failed": 0}
    late = progress_json(events, 31.0)
    assert late is not None
    assert (late["trial"], late["condition"], late["stage"]) == (2, "none", "starting")
    assert late["outcomes"] == {"ok": 1, "invalid": 1, "failed": 0}


# --- the runner ------------------------------------------------------------------------------

def _fake_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platform, "require_lab_prerequisites", lambda **_kw: None)
    monkeypatch.setattr(platform, "detect", lambda *_a, **_kw: platform.PlatformInfo(
        "test", "-", False, "user", True, False, "-", "3"))
    monkeypatch.setattr(platform, "resolve_engine", lambda engine: "os-ken")
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path / "state")


def _snapshot(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}api/snapshot", timeout=5) as resp:
        return json.loads(resp.read())


def test_runner_writes_progress_and_serves_it_live(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """The real dashboard process over a fake experiment: each trial reads its own trial,
    condition and stage from /api/snapshot; at the end the process and its record are gone."""
    _fake_platform(monkeypatch, tmp_path)
    out = io.StringIO()
    seen: list[tuple[int, str, str]] = []
    pids: set[int] = set()

    def trial(ctx: runner.TrialContext) -> TrialResult:
        ctx.stage(f"probing {ctx.condition}")
        url = re.search(r"dashboard: (http://\S+/)", out.getvalue()).group(1)
        progress = _snapshot(url)["progress"]
        seen.append((progress["trial"], progress["condition"], progress["stage"]))
        pids.update(p.pid for state in runstate.all_states() for p in state.processes)
        if ctx.condition == "b":
            raise ValueError("condition b fails")
        return TrialResult(metrics={"x": 1.0})

    exp = Experiment("fake", "a fake experiment", (), trial, lambda _bundle: [],
                     conditions=lambda _cfg: ["a", "b"])
    config = resolve_config(exp, None, {"trials": 2})
    outcome = runner.run_experiment(exp, config, tmp_path / "results", ["x"],
                                    progress=QuietProgress(out), dashboard_port=0)
    assert sorted(seen) == [(1, "a", "probing a"), (1, "b", "probing b"),
                            (2, "a", "probing a"), (2, "b", "probing b")]
    events = _events(outcome.bundle / "raw" / progresslog.PROGRESS_LOG)
    trials = [e for e in events if e.event == "trial"]
    assert [e.run for e in trials] == [1, 2, 3, 4]
    for e in trials:
        assert (outcome.bundle / e.raw_dir).is_dir()
        assert e.raw_dir == f"raw/trial-{e.trial:03d}/{e.condition}"
    assert sorted(e.outcome for e in events if e.event == "done") == [
        "failed", "failed", "ok", "ok"]
    assert events[0].event == "start" and events[-1].event == "finish"
    assert pids and all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert not runstate.all_states()
    url = re.search(r"dashboard: (http://\S+/)", out.getvalue()).group(1)
    with pytest.raises(OSError):
        _snapshot(url)
    assert "replay it: python -m experiments.dashboard" in out.getvalue()
    replay = ReplaySource(outcome.bundle, speed=20)
    assert replay.events == events
    live = LiveSource(outcome.bundle).snapshot()
    assert live["progress"]["finished"] and live["progress"]["trial"] == 2


@pytest.mark.parametrize("error", [KeyboardInterrupt, Interrupted, TypeError])
def test_dashboard_stopped_when_the_run_is_cut_short(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path,
                                                     error: type[BaseException]) -> None:
    """Ctrl-C and SIGTERM (Interrupted) end the run with what is done; a bug in a trial
    escapes the runner: the dashboard process and its record are gone in every case."""
    _fake_platform(monkeypatch, tmp_path)
    pids: set[int] = set()

    def trial(ctx: runner.TrialContext) -> TrialResult:
        pids.update(p.pid for state in runstate.all_states() for p in state.processes)
        raise error(15) if error is Interrupted else error()

    exp = Experiment("fake", "a fake experiment", (), trial, lambda _bundle: [])
    config = resolve_config(exp, None, {"trials": 3})
    kwargs: dict[str, Any] = {"progress": QuietProgress(io.StringIO()), "dashboard_port": 0}
    if error is TypeError:
        with pytest.raises(TypeError):
            runner.run_experiment(exp, config, tmp_path / "results", ["x"], **kwargs)
    else:
        outcome = runner.run_experiment(exp, config, tmp_path / "results", ["x"], **kwargs)
        assert outcome.interrupted
        (bundle,) = (tmp_path / "results" / "fake").glob("2*")
        assert _events(bundle / "raw" / progresslog.PROGRESS_LOG)[-1].event == "finish"
    assert pids and all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert not runstate.all_states()


def test_taken_port_is_one_line_before_the_bundle(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    _fake_platform(monkeypatch, tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free(port)
        exp = get_experiment("rtt")
        with pytest.raises(UserError, match=f"--dashboard: port {port} .* in use"):
            runner.run_experiment(exp, resolve_config(exp, None, {}), tmp_path / "r", ["x"],
                                  dashboard_port=port)
    assert not (tmp_path / "r").exists()
    assert port_free(0)


def test_dashboard_option_of_every_experiment() -> None:
    parser = experiment_parser(get_experiment("rtt"))
    assert parser.parse_args([]).dashboard is None
    assert parser.parse_args(["--dashboard"]).dashboard == DEFAULT_PORT
    assert parser.parse_args(["--dashboard", "--quick"]).dashboard == DEFAULT_PORT
    assert parser.parse_args(["--dashboard", "0"]).dashboard == 0
    assert parser.parse_args(["--dashboard", "9000", "--quick"]).quick


@pytest.mark.parametrize("value", ["70000", "x", "-1"])
def test_bad_dashboard_port_is_one_line_exit_2(tmp_path: Path, value: str) -> None:
    res = subprocess.run([sys.executable, "-m", "experiments.run", "rtt", "--dashboard",
                          value, "--out", str(tmp_path / "r")], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dashboard" in lines[0], res.stderr
    assert not (tmp_path / "r").exists()
