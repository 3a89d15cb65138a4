"""A 2-server emulated cluster (``lab.emucluster``): ``rtt`` across servers with 0 % loss,
then a run SIGTERMed mid-trial leaves nothing on either server or on the head."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import emucluster
from lab.cluster import load_cluster
from lab.cluster_nodes import ssh_command
from lab.runstate import STATE_DIR, RunState

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "data" / "cluster-2.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    if emucluster.ClusterState.load() is not None:
        pytest.skip(f"an emulated cluster is already up ({emucluster.RUN_DIR})")
    emucluster.up(2)
    try:
        yield
    finally:
        emucluster.down()
    assert not emucluster.RUN_DIR.exists()
    assert not Path("/sys/class/net", emucluster.BRIDGE).exists()


def on_server(address: str, script: str) -> str:
    spec = load_cluster(CLUSTER)
    server = next(s for s in spec.servers if s.address == address)
    res = subprocess.run([*ssh_command(spec, server), script], capture_output=True, text=True,
                         timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def server_leftovers() -> dict[str, str]:
    """Per server: OVS bridges and interfaces other than lo/eth0, and processes whose network
    namespace is neither the server's own nor the head's (an emulated host's)."""
    found = {}
    for address in ("172.31.250.11", "172.31.250.12"):
        bridges = on_server(address, "ovs-vsctl list-br").split()
        links = [ln.split()[0].split("@")[0] for ln in
                 on_server(address, "ip -br link").splitlines()]
        extra = [name for name in links if name not in ("lo", "eth0")]
        if bridges or extra:
            found[address] = f"bridges {bridges}, interfaces {extra}"
    return found


def cluster_states() -> list[str]:
    names = []
    for path in STATE_DIR.glob("lab-*.json"):
        try:
            if RunState.load(path).servers:
                names.append(path.name)
        except (OSError, ValueError, TypeError):
            continue
    return names


def test_rtt_across_servers_then_sigterm_leaves_nothing(cluster: None, tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "experiments.run", "rtt", "--cluster", str(CLUSTER), "--quick",
         "--trials", "1", "--pairs", "hmi:plc1,hmi:plc2", "--json", "--quiet",
         "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=240,
        check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    bundle = Path(json.loads(res.stdout.splitlines()[-1])["bundle"])
    with (bundle / "ping_pairs.csv").open() as f:
        pairs = list(csv.DictReader(f))
    # The PLCs ran on srv2, the HMI on srv1: every ping crossed the ssh tunnel.
    assert [(p["dst"], p["received"], float(p["loss_pct"])) for p in pairs] == [
        ("plc1", "5", 0.0), ("plc2", "5", 0.0)]
    assert server_leftovers() == {}
    assert cluster_states() == []

    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", "rtt", "--cluster", str(CLUSTER),
         "--trials", "1", "--count", "1000", "--pairs", "hmi:plc1", "--quiet",
         "--out", str(tmp_path / "term")], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pings = list((tmp_path / "term").glob("rtt/*/raw/trial-001/plc1.log"))
            states = cluster_states()
            if pings and states and any(
                    RunState.load(STATE_DIR / s).servers[0].netns for s in states):
                break
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("the cluster run never reached its trial")
        # Mid-trial: something exists on both servers now.
        assert set(server_leftovers()) == {"172.31.250.11", "172.31.250.12"}
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert server_leftovers() == {}, err[-2000:]
    assert cluster_states() == []
