"""Attack CLIs: bad input is one line on stderr + exit 2; outcomes are written atomically and
still written, marked interrupted, on SIGTERM/SIGINT. No root needed, nothing is sent."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attacks import recon
from common.cli import choice_list, port_list, positive_float
from common.hostenv import (
    AttackContext,
    AttackOutcome,
    HostEnvError,
    attack_parser,
    require_host_namespace,
    run_attack,
    utc_now_iso,
    write_json_atomic,
)
from common.plan import classic_plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    classic_plan().save(path)
    return path


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attacks.recon", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


BAD_INPUTS = [
    (["--targets", "8.8.8.8"], "outside the plan's subnet"),
    (["--targets", "192.168.1.0/24"], "outside the plan's subnet"),
    (["--targets", "10.0.0.0/8"], "outside the plan's subnet"),
    (["--targets", "plc1"], "host names are not resolved"),
    (["--targets", "10.0.0.0/33"], "malformed CIDR"),
    (["--targets", ""], "empty"),
    (["--targets", "fe80::1"], "IPv6"),
    (["--targets", "10.0.0.1-300"], "ranges are not accepted"),
    (["--targets", "10.0.0.0/24", "--ports", "0"], "--ports"),
    (["--targets", "10.0.0.0/24", "--ports", "http"], "--ports"),
    (["--targets", "10.0.0.0/24", "--stages", "discovery,exploit"], "--stages"),
    (["--targets", "10.0.0.0/24", "--engine", "masscan"], "--engine"),
    (["--targets", "10.0.0.0/24", "--timeout-s", "-1"], "--timeout-s"),
    (["--targets", "10.0.0.0/24", "--timeout-s", "nan"], "--timeout-s"),
    (["--targets", "10.0.0.0/24", "--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("extra", "says"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2(plan_path: Path, tmp_path: Path, extra: list[str],
                                      says: str) -> None:
    out = tmp_path / "outcome.json"
    done = _cli("--plan", str(plan_path), "--out", str(out), *extra)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("attacks.recon: error: ")
    assert says in lines[0]
    assert not out.exists()


def test_missing_arguments_and_unreadable_plan(tmp_path: Path) -> None:
    done = _cli()
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "--plan" in done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for plan in (tmp_path / "absent.json", broken):
        done = _cli("--plan", str(plan), "--targets", "10.0.0.1", "--out",
                    str(tmp_path / "o.json"))
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert "plan" in done.stderr and "Traceback" not in done.stderr


def test_out_directory_must_exist(plan_path: Path, tmp_path: Path) -> None:
    done = _cli("--plan", str(plan_path), "--targets", "10.0.0.1", "--out",
                str(tmp_path / "nowhere" / "o.json"))
    assert done.returncode == 2 and "does not exist" in done.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/net"), reason="needs Linux /proc")
def test_refuses_the_root_network_namespace(plan_path: Path, tmp_path: Path) -> None:
    """The test runner is in the root namespace: valid arguments, still refused."""
    out = tmp_path / "o.json"
    done = _cli("--plan", str(plan_path), "--targets", "10.0.0.0/24", "--out", str(out))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    # As root: "refusing to run in the root network namespace"; unprivileged: "cannot ...".
    assert "root network namespace" in done.stderr or "cannot" in done.stderr
    assert not out.exists()


def test_namespace_check_compares_inodes(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.write_text("")
    other.write_text("")
    require_host_namespace(self_ns=str(mine), init_ns=str(other))  # different: allowed
    with pytest.raises(HostEnvError, match="root network namespace"):
        require_host_namespace(self_ns=str(mine), init_ns=str(mine))


def test_recon_main_in_process_returns_2(plan_path: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status = recon.main(["--plan", str(plan_path), "--targets", "8.8.8.8", "--out",
                         str(tmp_path / "o.json")])
    assert status == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- run_attack in process, with a stub namespace check ---------------------------------
def _run(plan_path: Path, out: Path, body, *, extra: list[str] | None = None) -> int:
    parser = attack_parser("attacks.demo", "demo")

    def new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> AttackOutcome:
        return AttackOutcome(attack="demo", parameters={}, targets=list(targets),
                             started_at=utc_now_iso())

    return run_attack(parser=parser, argv=["--plan", str(plan_path), "--targets",
                                           "10.0.0.0/30", "--out", str(out), *(extra or [])],
                      new_outcome=new_outcome, body=body, namespace_check=lambda: None)


def test_outcome_written_atomically(plan_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    out.write_text("old")

    def body(ctx: AttackContext) -> None:
        assert ctx.targets == ("10.0.0.1", "10.0.0.2")
        assert out.read_text() == "old"  # nothing half-written while running

    assert _run(plan_path, out, body) == 0
    outcome = json.loads(out.read_text())
    assert outcome["interrupted"] is False and outcome["errors"] == []
    assert outcome["targets"] == ["10.0.0.1", "10.0.0.2"]
    assert outcome["parameters"]["plan"] == str(plan_path)
    assert outcome["started_at"] <= outcome["ended_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "plan.json"]


def test_failing_body_still_writes_outcome(plan_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.json"

    def body(ctx: AttackContext) -> None:
        raise RuntimeError("nmap vanished")

    assert _run(plan_path, out, body) == 1
    assert json.loads(out.read_text())["errors"] == ["RuntimeError: nmap vanished"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_writes_outcome(plan_path: Path, tmp_path: Path,
                                                 signum: int) -> None:
    out = tmp_path / "o.json"
    before = signal.getsignal(signum)
    cleaned = []

    def body(ctx: AttackContext) -> None:
        ctx.outcome.errors.append("partial result kept")
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler interrupts this
            raise AssertionError("signal did not interrupt the body")
        finally:
            cleaned.append(True)

    start_s = time.monotonic()
    assert _run(plan_path, out, body) == 128 + signum
    assert time.monotonic() - start_s < 4
    assert cleaned == [True]
    outcome = json.loads(out.read_text())
    assert outcome["interrupted"] is True
    assert outcome["interrupt_signal"] == signal.Signals(signum).name
    assert outcome["errors"] == ["partial result kept"]
    assert signal.getsignal(signum) is before  # handlers restored


def test_write_json_atomic_replaces(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# --- argparse types ---------------------------------------------------------------------
def test_argument_types() -> None:
    assert port_list("502,80,80,8000-8002") == (502, 80, 8000, 8001, 8002)
    for bad in ("0", "65536", "a", "5-1", "", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            port_list(bad)
    stages = choice_list(recon.STAGES)
    assert stages("modbus,discovery") == ("discovery", "modbus")
    with pytest.raises(argparse.ArgumentTypeError):
        stages("discovery,")
    assert positive_float("2.5") == 2.5
    for bad in ("0", "-1", "inf", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(bad)
