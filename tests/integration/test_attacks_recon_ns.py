"""Recon inside a real emulated network: both engines find every host and the Modbus listener.

One userspace-datapath OVS switch in standalone mode (no controller), hosts axh1..axh4 at
10.0.0.1-4/24, no default route. axh2 serves HTTP on 80, axh4 a minimal Modbus/TCP responder
on 502; recon runs in axh1 (the attacker) and must find axh2-axh4, not itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.plan import classic_plan

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SWITCH = "ax1"
SWITCH_DPID = "00000000000000a1"

# Answers Report Server ID (0x11) with b"SDNICS-test"; any other function: exception 0x01.
FAKE_MODBUS = r"""
import socket, socketserver, struct, sys
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(5)
        while True:
            try:
                head = sock.recv(7, socket.MSG_WAITALL)
            except OSError:
                return
            if len(head) < 7:
                return
            tid, pid, length, unit = struct.unpack(">HHHB", head)
            if pid != 0 or not 2 <= length <= 254:
                return
            pdu = sock.recv(length - 1, socket.MSG_WAITALL)
            if not pdu:
                return
            if pdu[0] == 0x11:
                body = b"\x01\xffSDNICS-test"
                reply = bytes([0x11, len(body)]) + body
            else:
                reply = bytes([pdu[0] | 0x80, 0x01])
            sock.sendall(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server((sys.argv[1], 502), Handler).serve_forever()
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (Mininet)"
    for tool in ("ovs-vsctl", "nmap", "ethtool", "mnexec"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    probe = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True)
    if probe.returncode != 0:
        return "Open vSwitch is not running (make setup)"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "mininet not importable (use the project venv)"
    return None


def _wait_listening(host, ip: str, port: int, timeout_s: float = 10.0) -> None:
    """Poll until ``ip:port`` accepts TCP connections from inside ``host``."""
    deadline = time.monotonic() + timeout_s
    check = (f"import socket; socket.create_connection(('{ip}', {port}), timeout=0.5)")
    while time.monotonic() < deadline:
        result = host.popen([sys.executable, "-c", check])
        if result.wait() == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{ip}:{port} never listened")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    setLogLevel("warning")
    work = tmp_path_factory.mktemp("recon")
    plan = classic_plan()
    plan_path = work / "plan.json"
    plan.save(plan_path)
    net = Mininet(switch=OVSSwitch, controller=None, build=False, autoSetMacs=False)
    procs = []
    try:
        switch = net.addSwitch(SWITCH, dpid=SWITCH_DPID, datapath="user",
                               failMode="standalone")
        for spec in plan.hosts:
            host = net.addHost(f"ax{spec.name}", ip=f"{spec.ip}/{plan.prefixlen}",
                               mac=spec.mac)
            net.addLink(host, switch)
        net.build()
        net.start()
        hosts = {spec.name: net.get(f"ax{spec.name}") for spec in plan.hosts}
        for host in hosts.values():
            # Userspace datapath: TCP is dropped unless TX checksum offload is off (PLATFORM.md).
            host.cmd(f"ethtool -K {host.defaultIntf()} tx off")
        procs.append(hosts["h2"].popen([sys.executable, "-m", "http.server", "80",
                                        "--bind", plan.host("h2").ip]))
        procs.append(hosts["h4"].popen([sys.executable, "-c", FAKE_MODBUS,
                                        plan.host("h4").ip]))
        _wait_listening(hosts["h1"], plan.host("h2").ip, 80)
        _wait_listening(hosts["h1"], plan.host("h4").ip, 502)
        yield {"net": net, "hosts": hosts, "plan": plan, "plan_path": plan_path, "work": work}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        net.stop()


def _run_recon(lab: dict, engine: str, stages: str, name: str,
               timeout_s: float = 120) -> tuple[dict, subprocess.CompletedProcess]:
    out = lab["work"] / f"{name}.json"
    raw = lab["work"] / f"{name}-raw"
    cmd = [sys.executable, "-m", "attacks.recon", "--plan", str(lab["plan_path"]),
           "--targets", "10.0.0.0/24", "--ports", "22,80,502", "--stages", stages,
           "--engine", engine, "--timeout-s", "90", "--stage-timeout-s", "30",
           "--out", str(out), "--raw-dir", str(raw)]
    proc = lab["hosts"]["h1"].popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (lab["work"] / f"{name}.stderr").write_text(stderr)
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    assert out.exists(), f"no outcome; stderr:\n{stderr}"
    return json.loads(out.read_text()), done


def _by_address(outcome: dict) -> dict[str, dict]:
    return {f["address"]: f for f in outcome["findings"]}


@pytest.mark.parametrize("engine", ["nmap", "scapy"])
def test_recon_finds_hosts_and_modbus(lab: dict, engine: str) -> None:
    outcome, done = _run_recon(lab, engine, "discovery,syn,connect,version,modbus",
                               f"full-{engine}")
    assert done.returncode == 0, done.stderr
    assert outcome["engine"] == engine
    assert outcome["interrupted"] is False
    assert outcome["errors"] == []
    found = _by_address(outcome)
    assert set(found) == {"10.0.0.2", "10.0.0.3", "10.0.0.4"}, "attacker must not find itself"
    assert outcome["attacker_addresses"] == ["10.0.0.1"]
    assert found["10.0.0.4"]["open_ports"] == [502]
    assert found["10.0.0.2"]["open_ports"] == [80]
    assert found["10.0.0.3"]["open_ports"] == []
    assert found["10.0.0.4"]["mac"] == lab["plan"].host("h4").mac
    assert found["10.0.0.2"]["found_by"] == "discovery"
    modbus = next(s for s in found["10.0.0.4"]["services"] if s["port"] == 502)
    assert "SDNICS-test" in json.dumps(modbus["details"])
    stages = {s["name"]: s for s in outcome["stages"]}
    assert list(stages) == ["discovery", "syn", "connect", "version", "modbus"]
    for record in stages.values():
        assert record["status"] == "ok", record
        assert record["duration_s"] >= 0
        assert Path(record["raw_file"]).exists()
    assert stages["discovery"]["hosts_up"] == 3


def test_recon_without_discovery_scans_every_target(lab: dict) -> None:
    outcome, done = _run_recon(lab, "nmap", "syn", "syn-only")
    assert done.returncode == 0, done.stderr
    found = _by_address(outcome)
    # axh3 has no open port but answers with RSTs: alive. Silent addresses are not findings.
    assert set(found) == {"10.0.0.2", "10.0.0.3", "10.0.0.4"}
    assert found["10.0.0.3"]["found_by"] == "syn"
    assert outcome["stages"][0]["targets"] == 253  # .1-.254 minus the attacker itself


def test_recon_sigterm_still_writes_outcome(lab: dict) -> None:
    """SIGTERM during the slow -sV stage: nmap is stopped, the outcome says interrupted."""
    out = lab["work"] / "interrupted.json"
    cmd = [sys.executable, "-m", "attacks.recon", "--plan", str(lab["plan_path"]),
           "--targets", "10.0.0.0/24", "--stages", "discovery,version", "--ports", "1-2000",
           "--out", str(out)]
    proc = lab["hosts"]["h1"].popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    try:
        version_nmap = _wait_for_child(proc.pid, "-sV", timeout_s=30)
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + 15, stderr
    assert not Path(f"/proc/{version_nmap}").exists(), "nmap outlived recon"
    outcome = json.loads(out.read_text())
    assert outcome["interrupted"] is True
    assert outcome["interrupt_signal"] == "SIGTERM"
    assert outcome["ended_at"]
    assert [(s["name"], s["status"]) for s in outcome["stages"]] == [
        ("discovery", "ok"), ("version", "interrupted")]
    assert len(outcome["findings"]) == 3  # what discovery found is kept
    assert "Traceback" not in stderr


def _wait_for_child(pid: int, needle: str, timeout_s: float) -> int:
    """Poll until a child of ``pid`` has ``needle`` in its command line; return its pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in _children(pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle.encode() in cmdline:
                return child
        time.sleep(0.05)
    raise AssertionError(f"no child of {pid} ran with {needle}")


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
