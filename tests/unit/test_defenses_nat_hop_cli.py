"""nat_hop's command line: every refusal is one line on stderr, exit 2, before any change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.plan import ics_plan
from defenses import nat_hop


@pytest.fixture()
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    ics_plan().save(path)
    return path


def _no_check() -> None:
    raise AssertionError("the namespace check must not be reached")


@pytest.mark.parametrize(("extra", "needle"), [
    (["--host", "hmi"], "not protected"),
    (["--host", "nobody"], "no host named"),
    (["--host", "plc1", "--hop-interval-s", "0"], "--hop-interval-s"),
    (["--host", "plc1", "--jitter-s", "5"], "jitter_s"),
    (["--host", "plc1", "--grace-s", "25"], "quarantine"),
    (["--host", "plc1", "--flow-idle-s", "0"], "flow_idle_timeout_s"),
    (["--host", "plc1", "--duration-s", "999999"], "at most"),
    (["--host", "plc1", "--start-epoch-s", "nan"], "finite"),
    (["--host", "plc1", "--bogus"], "unrecognized"),
    (["--host", "plc1", "--arp-mac", "random"], "--arp-mac"),
])
def test_bad_input_is_one_line_exit_2(plan_path: Path, tmp_path: Path, extra: list[str],
                                      needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--plan", str(plan_path), "--log", str(tmp_path / "hops.jsonl"), *extra]
    assert nat_hop.main(argv, namespace_check=_no_check) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_missing_plan_log_or_directories(plan_path: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ["--host", "plc1", "--log", str(tmp_path / "h.jsonl")],
        ["--host", "plc1", "--plan", str(tmp_path / "none.json"), "--log", str(tmp_path / "h")],
        ["--host", "plc1", "--plan", str(plan_path), "--log", str(tmp_path / "no" / "h")],
        ["--host", "plc1", "--plan", str(plan_path), "--log", str(tmp_path / "h"),
         "--out", str(tmp_path / "no" / "s.json")],
        ["--plan", str(plan_path), "--log", str(tmp_path / "h")],
    ]
    for argv in cases:
        assert nat_hop.main(argv, namespace_check=_no_check) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_refuses_the_root_network_namespace(plan_path: Path, tmp_path: Path) -> None:
    for extra in ([], ["--cleanup"]):
        done = subprocess.run(
            [sys.executable, "-m", "defenses.nat_hop", "--plan", str(plan_path), "--host",
             "plc1", "--log", str(tmp_path / "hops.jsonl"), *extra],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1
        # As root: "refusing to run in the root network namespace"; unprivileged: "cannot ...".
        assert "root network namespace" in done.stderr or "cannot" in done.stderr
    assert not (tmp_path / "hops.jsonl").exists()
