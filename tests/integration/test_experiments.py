"""``rtt`` and ``recon`` end to end through the CLI, interrupts and crash clean-up."""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.teardown import existing_bridges
from reporting.summary import flat_metrics
from tests.support.names import PORT_PREFIXES, SWITCHES, own_states

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def metrics(bundle: Path) -> dict[str, dict]:
    return flat_metrics(json.loads((bundle / "summary.json").read_text()))


def test_rtt_bundle(tmp_path: Path) -> None:
    res = run("experiments.run", "rtt", "--quick", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    bundle = (tmp_path / "rtt" / "latest").resolve()
    for name in ("config.json", "manifest.json", "summary.json", "plan.json",
                 "rtt_samples.csv", "ping_pairs.csv", "metrics.csv", "rtt_cdf.png",
                 "rtt_cdf.svg"):
        assert (bundle / name).is_file(), name
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["complete"] and manifest["platform"]["datapath"] in ("user", "kernel")
    assert manifest["controller"]["engine"] in ("ryu", "os-ken")
    m = metrics(bundle)
    print(f"rtt: loss {m['loss_pct']['mean']}%, p50 {m['rtt_p50_ms']['mean']:.3f} ms, "
          f"first {m['first_rtt_ms']['mean']:.3f} ms")
    assert m["loss_pct"]["mean"] == 0.0
    assert 0 < m["rtt_p50_ms"]["mean"] < 50
    pairs = list(csv.DictReader(open(bundle / "ping_pairs.csv")))
    assert {(p["src"], p["dst"]) for p in pairs} == {("hmi", "plc1"), ("hmi", "plc2"),
                                                     ("ews", "historian")}
    assert (bundle / "raw" / "trial-001" / "ping_hmi_plc1.txt").is_file()
    assert "bundle:" in res.stdout and "rtt_p50_ms" in res.stdout


def test_recon_finds_exactly_the_topology(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = run("experiments.run", "recon", "--trials", "2", "--defense", "none", "--out",
              str(tmp_path))
    wall_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    bundle = (tmp_path / "recon" / "latest").resolve()
    m = metrics(bundle)
    print(f"recon: 2 trials in {wall_s:.1f} s; discovery {m['none:discovery_s']['mean']:.2f} s,"
          f" port scan {m['none:port_scan_s']['mean']:.2f} s")
    # n of a proportion is the hosts pooled over the trials; the trials are counted apart
    assert m["none:host_precision"]["mean"] == 1.0 and m["none:host_precision"]["trials"] == 2
    assert m["none:host_recall"]["mean"] == 1.0
    assert m["none:port_recall"]["mean"] == 1.0
    assert m["none:unexpected_open_ports"]["mean"] == 0
    assert m["none:modbus_id_recall"]["mean"] == 1.0
    assert m["none:attacker_modbus_success"]["mean"] == 1.0
    hosts = list(csv.DictReader(open(bundle / "recon_hosts.csv")))
    assert {h["owner"] for h in hosts} == {"hmi", "ews", "historian", "plc1", "plc2"}
    open_502 = {h["owner"] for h in hosts if "502" in h["open_ports"].split()}
    assert open_502 == {"plc1", "plc2"}
    for name in ("recon_progress.png", "recon_stages.svg", "staleness.png", "report.html",
                 "raw/trial-001/none/recon_outcome.json",
                 "raw/trial-002/none/recon/nmap_discovery.xml",
                 "raw/trial-001/none/plc1_state.csv"):
        assert (bundle / name).is_file(), name
    # --warm-lab (the default): the second trial ran on the first one's network and
    # controller, its own processes logging into its own folder, the manifest says so
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [t["timeline"]["lab_reused"] for t in manifest["trials"]] == [0.0, 1.0]
    assert manifest["trials"][1]["timeline"]["build_s"] == 0.0
    assert "switch connected" in (bundle / "raw/lab-1/controller.log").read_text()
    for name in ("plc1_state.csv", "hmi_requests.csv", "recon.log"):
        assert (bundle / "raw/trial-002/none" / name).is_file(), name
    assert "warm lab: 1 of 2 run(s) reused" in res.stdout + res.stderr


def test_recon_under_both_defenses_is_valid_and_defeats_the_exploit(tmp_path: Path) -> None:
    # One trial per defense: repeated trials are the experiments' business, and recon under
    # rhm runs three more times in test_reproducibility.
    res = run("experiments.run", "recon", "--trials", "1", "--defense", "all", "--out",
              str(tmp_path), timeout_s=600)
    assert res.returncode == 0, res.stderr
    bundle = (tmp_path / "recon" / "latest").resolve()
    m = metrics(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["conditions"] == ["none", "rhm", "nat"]
    assert [t["status"] for t in manifest["trials"]] == ["ok"] * 3
    assert manifest["validity"]["rhm:real_addresses_unreachable"]
    assert manifest["validity"]["nat:real_addresses_unreachable"]

    def mean(key: str) -> float:
        """A metric's mean; NaN when absent (nothing was attempted, e.g. no target found)."""
        return float(m[key]["mean"]) if key in m else math.nan

    for d in ("none", "rhm", "nat"):
        print(f"{d}: modbus success {mean(f'{d}:attacker_modbus_success'):.2f}, "
              f"no target found {mean(f'{d}:attack_no_target'):.2f}, "
              f"findings valid at exploit {mean(f'{d}:findings_valid_at_exploit'):.2f}, "
              f"HMI availability {m[f'{d}:hmi_availability']['mean']:.4f}")
        assert m[f"{d}:hmi_availability"]["mean"] >= 0.999
    assert m["none:attacker_modbus_success"]["mean"] == 1.0
    for d in ("rhm", "nat"):
        # Defeated: the attack was scored, and either found no target in any trial (success
        # absent: no attempt is no 0) or reached at most a tenth of the PLCs it tried.
        assert f"{d}:attack_no_target" in m, d
        success = mean(f"{d}:attacker_modbus_success")
        assert math.isnan(success) or success <= 0.1, (d, success)
    for d in ("rhm", "nat"):
        assert m[f"{d}:hop_latency_p95_ms"]["mean"] > 0
        assert m[f"{d}:rtt_authorized_p50_ms"]["mean"] > 0
    for name in ("staleness.svg", "defense_outcomes.png", "hops.csv", "reach_check.csv"):
        assert (bundle / name).is_file(), name


def _wait_for_lab(proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if own_states() and SWITCHES <= existing_bridges():
            return
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    raise AssertionError("the lab never came up")


def _leftovers() -> list[str]:
    left = [f"bridge {b}" for b in SWITCHES & existing_bridges()]
    left += [f"state {n}" for n in own_states()]
    left += [f"intf {p.name}" for p in Path("/sys/class/net").iterdir()
             if p.name.startswith(PORT_PREFIXES)]
    return left


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "experiments.run", "recon", "--trials", "3",
                             "--out", str(tmp_path)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_lab(proc)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not _leftovers()
    bundle = (tmp_path / "recon" / "latest").resolve()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["interrupted"] and not manifest["complete"]


def test_clean_after_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "experiments.run", "recon", "--trials", "3",
                             "--out", str(tmp_path)], cwd=REPO, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_lab(proc)
        time.sleep(0.5)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _leftovers(), "SIGKILL should have left the network behind"
    res = run("experiments.clean")
    print(res.stdout)
    assert res.returncode == 0, res.stderr
    assert "removed" in res.stdout and "bridge" in res.stdout
    assert not _leftovers()
    res = run("experiments.clean")
    # Nothing of ours is left to clean (labs of other sessions, if any, are live: left alone).
    assert res.returncode == 0
    assert "nothing to clean" in res.stdout or "removed 0 item(s)" in res.stdout
