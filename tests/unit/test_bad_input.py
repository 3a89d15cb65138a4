"""Every CLI answers bad input with one line on stderr and a non-zero exit, never a
traceback; missing prerequisites name the command that fixes them (no root needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import SetupError, UserError
from experiments import runner
from experiments.registry import get_experiment
from experiments.spec import resolve_config
from lab import platform

REPO = Path(__file__).resolve().parents[2]


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "bad.yaml").write_text("trials: [1,\n")
    (tmp / "bad.toml").write_text("trials = = 3\n")
    (tmp / "unknown.toml").write_text("trials = 2\nwarp_factor = 9\n")
    (tmp / "wrongtype.yaml").write_text("trials: three\n")
    (tmp / "range.json").write_text('{"n_hosts": 9999}')
    (tmp / "notabundle").mkdir(exist_ok=True)
    (tmp / "plainfile").write_text("x")
    return {k: str(tmp / k) for k in ("bad.yaml", "bad.toml", "unknown.toml", "wrongtype.yaml",
                                      "range.json", "notabundle", "plainfile")}


# (module, args, what the one line must mention); "{name}" is filled from _files().
CASES = [
    ("experiments.run", ["nosuch"], "unknown experiment"),
    ("experiments.run", ["recon", "--trials", "-1"], "trials"),
    ("experiments.run", ["recon", "--trials", "1.5"], "trials"),
    ("experiments.run", ["recon", "--seed", "x"], "seed"),
    ("experiments.run", ["recon", "--topo", "ring"], "topo"),
    ("experiments.run", ["recon", "--n-hosts", "1"], "n_hosts"),
    ("experiments.run", ["recon", "--engine", "pox"], "engine"),
    ("experiments.run", ["recon", "--datapath", "dpdk"], "datapath"),
    ("experiments.run", ["recon", "--link-delay-ms", "-3"], "link_delay_ms"),
    ("experiments.run", ["recon", "--connect-timeout-s", "0"], "connect_timeout_s"),
    ("experiments.run", ["recon", "--scan-timeout-s", "1"], "scan_timeout_s"),
    ("experiments.run", ["recon", "--scanner", "masscan"], "scanner"),
    ("experiments.run", ["rtt", "--count", "0"], "count"),
    ("experiments.run", ["rtt", "--interval-s", "0"], "interval_s"),
    ("experiments.run", ["ics", "--duration-s", "0"], "duration_s"),
    ("experiments.run", ["ics", "--hmi-period-ms", "5"], "hmi_period_ms"),
    ("experiments.run", ["ics", "--operator-write=maybe"], "operator-write"),
    ("experiments.run", ["recon", "--wat"], "unrecognized"),
    ("experiments.run", ["recon", "--config", "{bad.yaml}"], "YAML"),
    ("experiments.run", ["recon", "--config", "{bad.toml}"], "TOML"),
    ("experiments.run", ["recon", "--config", "{unknown.toml}"], "warp_factor"),
    ("experiments.run", ["recon", "--config", "{wrongtype.yaml}"], "trials"),
    ("experiments.run", ["recon", "--config", "{range.json}"], "n_hosts"),
    ("experiments.run", ["recon", "--config", "/nonexistent.yaml"], "cannot read"),
    ("experiments.run", ["list", "x"], "list"),
    ("experiments.plot", [], "bundle"),
    ("experiments.plot", ["/nonexistent/bundle"], "not a directory"),
    ("experiments.plot", ["{notabundle}"], "not a results bundle"),
    ("experiments.plot", ["{plainfile}"], "not a directory"),
    ("experiments.clean", ["--everything"], "unrecognized"),
    ("controllers", ["nosuchapp"], "nosuchapp"),
    ("controllers", ["l2", "--ofp-port", "70000"], "port"),
    ("controllers", ["l2", "--ofp-host", "0.0.0.0"], "loopback"),
    ("controllers", ["l2", "--engine", "pox"], "engine"),
    ("plc.server", ["--process", "reactor"], "process"),
    ("plc.server", ["--process", "tank", "--port", "-1"], "port"),
    ("plc.server", ["--process", "tank", "--cycle-ms", "0"], "cycle"),
    ("plc.hmi", ["--plc", "plc1=not-an-ip", "--duration-s", "1", "--out", "/tmp/x.csv"],
     "plc1"),
    ("plc.hmi", ["--plc", "plc1=10.0.0.21", "--duration-s", "-1", "--out", "/tmp/x.csv"],
     "duration"),
    ("attacks.recon", ["--plan", "/nonexistent.json", "--targets", "10.0.0.0/24", "--out",
                       "/tmp/o.json"], "plan"),
]


@pytest.mark.parametrize("module,args,needle", CASES,
                         ids=[f"{m} {' '.join(a)}"[:60] for m, a, _ in CASES])
def test_bad_input_one_line_no_traceback(tmp_path: Path, module: str, args: list[str],
                                         needle: str) -> None:
    files = _files(tmp_path)
    argv = [files[a[1:-1]] if a.startswith("{") else a for a in args]
    res = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode != 0, res.stdout
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert needle.lower() in lines[0].lower(), lines[0]


def test_count_of_bad_invocations() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("patch,needle", [
    ({"is_root": lambda: False}, "sudo"),
    ({"ovs_running": lambda: False}, "ovs-ctl start"),
])
def test_missing_prerequisites_say_what_to_run(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, patch: dict,
                                               needle: str) -> None:
    monkeypatch.setattr(platform, "is_root", lambda: True)
    monkeypatch.setattr(platform, "ovs_running", lambda: True)
    monkeypatch.setattr(platform.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    for name, fn in patch.items():
        monkeypatch.setattr(platform, name, fn)
    exp = get_experiment("rtt")
    with pytest.raises(SetupError, match=needle):
        runner.run_experiment(exp, resolve_config(exp, None, {}), tmp_path, ["x"])
    assert not (tmp_path / "rtt").exists()  # nothing written before the checks pass


def test_missing_nmap_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "is_root", lambda: True)
    monkeypatch.setattr(platform, "ovs_running", lambda: True)
    monkeypatch.setattr(platform.shutil, "which",
                        lambda tool: None if tool == "nmap" else f"/usr/bin/{tool}")
    with pytest.raises(SetupError, match="nmap is not installed"):
        platform.require_lab_prerequisites(need_nmap=True)


def test_netem_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "netem_available", lambda: False)
    with pytest.raises(SetupError, match="netem"):
        platform.detect("auto", need_netem=True)


# List options are parsed with the other options, before anything is created: a bad one is
# one line, exit 2, and no bundle folder (it used to stop midway, leaving a bundle without a
# summary).
LIST_CASES = [
    (["recon", "--defense", "moat"], "moat"),
    (["recon", "--ports", "0"], "--ports"),
    (["mtd-sweep", "--intervals-s", "0,x"], "--intervals-s"),
    (["evasion", "--ports", "80-x"], "--ports"),
    (["attacks", "--attacks", "baseline,dos"], "dos"),
    (["attacks", "--mitm-tamper", "level"], "--mitm-tamper"),
    (["recon", "--stages", "syn"], "discovery"),
    (["bench", "--sizes", "1"], "--sizes"),
    (["bench", "--sizes", "10,x"], "--sizes"),
    (["bench", "--protected", "0"], "--protected"),
    (["bench", "--engines", "pox"], "--engines"),
]


@pytest.mark.parametrize("args,needle", LIST_CASES, ids=[" ".join(a) for a, _ in LIST_CASES])
def test_bad_list_option_creates_no_bundle(tmp_path: Path, args: list[str],
                                           needle: str) -> None:
    results = tmp_path / "results"
    res = subprocess.run([sys.executable, "-m", "experiments.run", *args, "--out",
                          str(results)], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert needle.lower() in lines[0].lower(), lines[0]
    assert not results.exists(), sorted(results.rglob("*"))


def test_bench_entry_point_checks_lists_before_the_bundle(tmp_path: Path) -> None:
    """``python -m experiments.bench`` is the same CLI: a bad list is one line, no bundle."""
    results = tmp_path / "results"
    res = subprocess.run([sys.executable, "-m", "experiments.bench", "--engines", "ryu,pox",
                          "--out", str(results)], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.strip().splitlines() == ["error: --engines: unknown engine 'pox' "
                                               "(ryu, os-ken)"]
    assert not results.exists()


def test_bad_list_in_config_file_is_named(tmp_path: Path) -> None:
    exp = get_experiment("recon")
    with pytest.raises(UserError, match="moat"):
        resolve_config(exp, {"defense": "none,moat"}, {})
    assert resolve_config(exp, {"defense": "all"}, {})["defense"] == "all"  # text kept


@pytest.mark.parametrize("name,flags,needle", [
    ("recon", {"defense": "rhm", "topo": "star"}, "protected host for rhm"),
    ("rtt", {"pairs": "h1:nosuch", "topo": "star"}, "nosuch"),
    ("ics", {"topo": "linear"}, "HMI"),
])
def test_topology_checked_before_the_bundle(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path, name: str, flags: dict,
                                            needle: str) -> None:
    monkeypatch.setattr(platform, "require_lab_prerequisites", lambda **_kw: None)
    monkeypatch.setattr(platform, "detect", lambda *_a, **_kw: None)
    monkeypatch.setattr(platform, "resolve_engine", lambda engine: engine)
    exp = get_experiment(name)
    with pytest.raises(UserError, match=needle):
        runner.run_experiment(exp, resolve_config(exp, None, flags), tmp_path, ["x"])
    assert not (tmp_path / name).exists()
