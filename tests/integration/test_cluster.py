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

from common.cli import wait_until
from lab import emucluster
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


def server_leftovers() -> dict[str, str]:
    """Per server: OVS bridges, interfaces other than lo/eth0, and processes started inside the
    server that live in an emulated host's network namespace (``emucluster.server_use``)."""
    state = emucluster.ClusterState.load()
    assert state is not None
    uses = {s.address: emucluster.server_use(s) for s in state.servers}
    return {address: use.describe() for address, use in uses.items() if not use.empty()}


def head_ssh_clients() -> list[str]:
    """The head's ssh clients to the emulated servers (node shells, tunnels, commands)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and any(a.startswith(b"root@172.31.250.")
                                                     for a in argv):
            found.append(f"{proc.name}: {b' '.join(argv).decode(errors='replace')[:120]}")
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
    # An ssh session's server side ends a moment after its client: poll, then assert.
    wait_until(lambda: not server_leftovers(), 10.0)
    assert server_leftovers() == {}
    assert cluster_states() == []
    assert head_ssh_clients() == []

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
    wait_until(lambda: not server_leftovers(), 10.0)
    assert server_leftovers() == {}, err[-2000:]
    assert cluster_states() == []
    assert head_ssh_clients() == []
