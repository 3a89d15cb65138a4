"""The lab lifecycle on real Mininet + Open vSwitch + the controller process."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from common.plan import ics_plan
from lab.lifecycle import LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine
from lab.runstate import pid_alive
from lab.teardown import existing_bridges
from tests.support.names import PORT_PREFIXES, S2, SWITCHES, own_states

pytestmark = pytest.mark.integration


def lab_config(tmp_path: Path, **kw: object) -> LabConfig:
    return LabConfig(plan=ics_plan(), log_dir=tmp_path, engine=resolve_engine("auto"),
                     datapath=choose_datapath("auto"), **kw)


def test_all_pairs_ping_tcp_and_clean_teardown(tmp_path: Path) -> None:
    plan = ics_plan()
    with running_lab(lab_config(tmp_path)) as lab:
        state_file = lab.state.path
        pids = [(p.pid, p.start_ticks) for p in lab.state.processes]
        assert state_file is not None and state_file.exists()
        assert SWITCHES <= existing_bridges()
        lost = []
        for a, b in itertools.permutations(plan.hosts, 2):
            out = lab.run(a.name, ["ping", "-n", "-c", "1", "-W", "2", b.ip], 10).stdout
            if " 0% packet loss" not in out:
                lost.append(f"{a.name}->{b.name}")
        print(f"all-pairs ping: {30 - len(lost)}/30 answered")
        assert not lost, f"no reply: {lost}"

        # TCP across the two switches (needs TX checksum offload off on the userspace path).
        plc1 = plan.host("plc1")
        server = lab.popen("plc1", [sys.executable, "-m", "http.server", "8080", "--bind",
                                    plc1.ip], "http.log")
        out = lab.host("hmi").cmd(
            f"{sys.executable} -c \"import socket,time\n"
            f"for i in range(50):\n"
            f"  try:\n"
            f"    s=socket.create_connection(('{plc1.ip}',8080),timeout=2);break\n"
            f"  except OSError: time.sleep(0.1)\n"
            f"s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n');print(s.recv(64))\"")
        assert "HTTP/1.0 200" in out, out
        lab.stop(server)
        lab.check_healthy()
        # No host has a route out of the emulated subnet.
        for h in plan.hosts:
            routes = lab.host(h.name).cmd("ip -4 route show")
            assert "default" not in routes, f"{h.name} has a default route: {routes}"
    assert not state_file.exists()
    assert not (SWITCHES & existing_bridges())
    assert not any(pid_alive(pid, ticks) for pid, ticks in pids)
    assert not [n for n in os.listdir("/sys/class/net") if n.startswith(PORT_PREFIXES)]


def test_bridge_name_clash_is_refused(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["ovs-vsctl", "add-br", S2, "--", "set", "bridge", S2,
                    "datapath_type=netdev"], check=True)
    try:
        from common.errors import SetupError

        with pytest.raises(SetupError, match="already exist"), running_lab(
                lab_config(tmp_path)):
            pass
        assert S2 in existing_bridges()  # someone else's bridge is left alone
        assert not own_states()
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", S2], check=True)
