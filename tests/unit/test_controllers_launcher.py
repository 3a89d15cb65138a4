"""``python -m controllers`` as users and the runner see it: argument errors, readiness, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controllers import __main__ as launcher
from controllers.registry import APPS
from tests.support.engines import ENGINE_PARAMS

REPO = Path(__file__).resolve().parents[2]
READY = "controller ready engine="


def run_launcher(*args: str, env: dict[str, str] | None = None,
                 timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controllers", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_usage_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize(("args", "needle"), [
    (("nosuchapp",), "unknown app 'nosuchapp'"),
    (("l2", "--ofp-port", "0"), "out of range"),
    (("l2", "--ofp-port", "70000"), "out of range"),
    (("l2", "--ofp-port", "six"), "not a number"),
    (("l2", "--ofp-host", "0.0.0.0"), "not a loopback address"),
    (("l2", "--ofp-host", "10.0.0.1"), "not a loopback address"),
    (("l2", "--ofp-host", "example.org"), "not an IP address"),
    (("l2", "--engine", "pox"), "unknown engine 'pox'"),
    (("l2", "--frobnicate"), "unrecognized arguments"),
    ((), "required: app"),
])
def test_bad_arguments_give_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    assert_one_line_usage_error(run_launcher(*args), needle)


def test_bad_engine_in_environment_is_a_usage_error() -> None:
    proc = run_launcher("l2", "--ofp-port", str(free_port()), env={"SDNICS_ENGINE": "pox"})
    assert_one_line_usage_error(proc, "unknown engine")


def test_engine_that_does_not_import_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "os_ken"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    proc = run_launcher("l2", "--engine", "os-ken", "--ofp-port", str(free_port()),
                        env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert_one_line_usage_error(proc, "engine os-ken is not importable")


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_launcher("l2", "--ofp-port", str(busy.getsockname()[1]))
    assert_one_line_usage_error(proc, "already in use")


def test_list_names_every_registered_app() -> None:
    proc = run_launcher("list")
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(APPS)


def test_main_returns_2_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.main(["l2", "--ofp-host", "192.0.2.1"]) == 2
    assert "loopback" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_ready_line_then_clean_exit_on_sigterm(engine: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "controller.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controllers", "l2", "--engine", engine,
         "--ofp-port", str(port), "--log-file", str(log)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline_s = time.monotonic() + 20.0
        while READY not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline_s, "no ready line within 20 s"
            time.sleep(0.05)
        text = log.read_text()
        assert f"controller ready engine={engine} " in text
        assert f" port={port} " in text
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # it really listens
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    text = log.read_text()
    assert "controller stopping signal=SIGTERM" in text
    assert "Traceback" not in text + err
    assert "HANDLER EXCEPTION" not in text


def test_habitual_ryu_manager_runs_the_l2_app() -> None:
    """``ryu-manager controllers/l2_switch.py`` works in the venv (needs ryu_compat --install)."""
    ryu_manager = Path(sys.executable).with_name("ryu-manager")
    if not ryu_manager.exists():
        pytest.skip("ryu-manager not installed in this environment")
    port = free_port()
    proc = subprocess.Popen(
        [str(ryu_manager), "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(port),
         "controllers/l2_switch.py"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline_s = time.monotonic() + 20.0
        while True:
            assert proc.poll() is None, (
                "ryu-manager died; is the hook installed? run: python -m controllers.ryu_compat "
                f"--install\n{proc.communicate()[0]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline_s, "ryu-manager not listening within 20 s"
                time.sleep(0.05)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "instantiating app controllers/l2_switch.py of L2Switch" in out
    assert "Traceback" not in out
