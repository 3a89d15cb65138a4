"""The capacity model (pure), the per-unit costs from server samples, the sampler's process
kinds, and the sampler itself on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.cluster_capacity import MEASURED, UnitCosts, capacity, main, unit_costs
from lab.cluster_sample import KINDS, kind_of, sample

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("argv", "kind"), [
    (["/usr/sbin/ovs-vswitchd", "unix:/run/openvswitch/db.sock"], "ovs"),
    (["sshd: root@notty"], "sshd"),
    (["/usr/sbin/sshd", "-D", "-e", "-f", "/run/x/sshd_config"], "sshd"),
    (["bash", "--norc", "--noediting", "-is", "mininet:h12"], "shells"),
    (["mnexec", "-cdn", "env", "PS1=\x7f", "bash"], "shells"),
    (["/work/.venv/bin/python", "-u", "-m", "plc.server", "--process", "tank"], "plc"),
    (["python", "-m", "plc.hmi", "--plc", "plc1=10.0.0.11"], "hmi"),
    (["ssh", "-n", "-o", "Tunnel=Ethernet", "-w", "9:9", "root@172.31.250.12", "echo @"],
     "tunnels"),
    (["/usr/sbin/cron"], "other"),
])
def test_kind_of(argv: list[str], kind: str) -> None:
    assert kind_of(argv) == kind


def test_capacity_memory_or_cpu_bound() -> None:
    costs = UnitCosts(host_mib=2.0, host_cpu_pct=0.0, plc_mib=48.0, plc_cpu_pct=1.0,
                      base_mib=24.0)
    cap = capacity(ram_gib=8, cores=4, costs=costs, headroom=0.5)
    assert (cap.hosts, cap.hosts_bound) == ((8 * 1024 // 2 - 24) // 2, "memory")
    # PLCs: memory allows (4096 - 24) / 50 = 81, CPU 200 % / 1 % = 200.
    assert (cap.plcs, cap.plcs_bound) == (81, "memory")
    small_cpu = capacity(ram_gib=64, cores=1, costs=costs, headroom=0.5)
    assert (small_cpu.plcs, small_cpu.plcs_bound) == (50, "cpu")
    assert capacity(ram_gib=0.01, cores=1, costs=costs).hosts == 0


def test_unit_costs_from_samples() -> None:
    def s(shells: float, sshd: float, ovs: float, plc: float, ns: int, plcs: int) -> dict:
        pss = dict.fromkeys(KINDS, 0.0) | {"shells": shells, "sshd": sshd, "ovs": ovs,
                                            "plc": plc}
        return {"pss_mib": pss, "cpu_pct": dict.fromkeys(KINDS, 0.0) | {"plc": 2.0 * plcs},
                "namespaces": ns, "plcs": plcs}
    before = {"a": s(0, 4, 16, 0, 0, 0), "b": s(0, 4, 16, 0, 0, 0)}
    after = {"a": s(100, 54, 26, 0, 50, 0), "b": s(20, 14, 18, 90, 10, 2)}
    costs = unit_costs(before, after)
    assert costs.host_mib == pytest.approx((120 + 60 + 12) / 60, abs=1e-3)
    assert costs.plc_mib == 45.0 and costs.plc_cpu_pct == 2.0 and costs.base_mib == 20.0


def test_model_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["model", "--ram-gib", "16", "--cores", "4"]) == 0
    out = capsys.readouterr().out
    expected = capacity(16, 4, MEASURED)
    assert f"{expected.hosts} idle hosts" in out and f"{expected.plcs} PLCs" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["model", "--ram-gib", "16", "--cores", "4", "--costs", str(bad)]) == 2
    assert "not a measure JSON" in capsys.readouterr().err
    assert main(["model", "--ram-gib", "16"]) == 2  # --cores missing: one line, exit 2
    assert "--cores" in capsys.readouterr().err


def test_sampler_runs_here() -> None:
    res = subprocess.run([sys.executable, "-m", "lab.cluster_sample", "--interval-s", "0.2"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(res.stdout)
    assert set(data["pss_mib"]) == set(KINDS) and data["mem_total_mib"] > 0
    assert sample(0.1)["cores"] >= 1
