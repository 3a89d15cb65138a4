"""Each engine's controller process forwarding a real Mininet network (root, OVS userspace).

Network: switches cx1 - cx2 (a two-switch tree, like the ``ics`` topology), hosts cxh1, cxh2 on
cx1 and cxh3 on cx2. The names start with ``cx`` so they never collide with other networks on
the machine; only what this test creates is removed (net.stop(), our controller pid).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from common.plan import AddressPlan, HostSpec, SwitchSpec, mac_for
from tests.support.engines import ENGINE_PARAMS

pytestmark = pytest.mark.integration

LOG = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 20.0
ERROR_MARKERS = ("HANDLER EXCEPTION", "Traceback")
TCP_PORT = 18765


def _stop(net) -> None:
    """net.stop(), then the controller node's shell, which Mininet leaves running."""
    net.stop()
    for node in net.controllers:
        node.terminate()


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (Mininet creates namespaces, veths and OVS bridges)"
    for tool in ("ovs-vsctl", "ping", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (sudo make setup)"
    try:
        subprocess.run(["ovs-vsctl", "--timeout=5", "show"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        return "Open vSwitch is not running (sudo make setup starts it)"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "Mininet is not importable (use the venv made by make setup)"
    return None


SKIP = _skip_reason()


def cx_plan() -> AddressPlan:
    """The test network's addresses (its own subnet; hosts and switches named cx*)."""
    subnet = "10.77.0.0/24"
    hosts = tuple(HostSpec(name=f"cxh{i}", role="host", ip=f"10.77.0.{i}", mac=mac_for(i),
                           switch="cx1" if i < 3 else "cx2") for i in (1, 2, 3))
    return AddressPlan(name="cx", subnet=subnet, hosts=hosts,
                       switches=(SwitchSpec("cx1", "00000000000cc001"),
                                 SwitchSpec("cx2", "00000000000cc002")),
                       trunks=(("cx1", "cx2"),))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms; returns seconds waited, fails the test on timeout."""
    start_s = time.monotonic()
    while not predicate():
        if time.monotonic() - start_s > timeout_s:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start_s


@pytest.fixture
def controller(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Start ``python -m controllers l2`` for the engine under test; yields (port, log)."""
    engine = request.param
    port = free_port()
    log = tmp_path / f"controller-{engine}.log"
    started_s = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "controllers", "l2", "--engine", engine,
         "--ofp-port", str(port), "--log-file", str(log)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"controller exited {proc.returncode}: {proc.stdout.read()!r} "
                            f"{log.read_text() if log.exists() else ''}")
            return log.exists() and "controller ready" in log.read_text()

        wait_for(ready, READY_TIMEOUT_S, f"{engine} controller ready line")
        LOG.info("MEASURED %s controller ready after %.2f s (process start to ready line)",
                    engine, time.monotonic() - started_s)
        yield port, log
    finally:
        proc.terminate()  # only the pid we started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"controller exited {proc.returncode} on SIGTERM"


def _dump(net: object, log: Path) -> str:
    flows = []
    for sw in ("cx1", "cx2"):
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", sw],
                             capture_output=True, text=True)
        flows.append(f"--- {sw}\n{out.stdout}{out.stderr}")
    return "\n".join(flows) + "\n--- controller log tail\n" + log.read_text()[-3000:]


TCP_SERVER = """
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1); srv.settimeout(30)
conn, _ = srv.accept(); conn.settimeout(10)
conn.sendall(conn.recv(64).upper()); conn.close()
"""

TCP_CLIENT = """
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"sdn-ics"); s.settimeout(5); print("REPLY", s.recv(64).decode())
"""


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
@pytest.mark.parametrize("controller", ENGINE_PARAMS, indirect=True)
def test_engine_forwards_real_network(controller: tuple[int, Path], tmp_path: Path) -> None:
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, RemoteController

    port, log = controller
    plan = cx_plan()
    existing = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    clash = {s.name for s in plan.switches} & set(existing.split())
    if clash:
        pytest.skip(f"bridge(s) {sorted(clash)} exist and are not ours: not touching them")

    switch = partial(OVSSwitch, datapath="user", failMode="secure", protocols="OpenFlow13")
    net = Mininet(switch=switch, controller=None, build=False, autoSetMacs=False,
                  cleanup=False, waitConnected=False)
    stopped = False
    try:
        net.addController(RemoteController("cxc0", ip="127.0.0.1", port=port))
        for s in plan.switches:
            net.addSwitch(s.name, dpid=s.dpid)
        for a, b in plan.trunks:
            net.addLink(a, b)
        for h in plan.hosts:
            net.addHost(h.name, ip=f"{h.ip}/{plan.prefixlen}", mac=h.mac, defaultRoute=None)
            net.addLink(h.name, h.switch)
        built_s = time.monotonic()
        net.build()
        net.start()
        for host in net.hosts:
            # Userspace datapath drops TCP with offloaded (unfilled) checksums: PLATFORM.md.
            host.cmd(f"ethtool -K {host.defaultIntf()} tx off >/dev/null 2>&1")

        dpids = [s.dpid for s in plan.switches]
        waited_s = wait_for(
            lambda: all(f"switch connected dpid={d}" in log.read_text() for d in dpids),
            CONNECT_TIMEOUT_S, f"switches {dpids} to connect")
        LOG.info("MEASURED switches connected %.2f s after net.build() (waited %.2f s)",
                    time.monotonic() - built_s, waited_s)

        rtts_ms: list[float] = []
        lost = []
        for a, b in itertools.permutations(plan.hosts, 2):
            out = net.get(a.name).cmd(f"ping -n -c 3 -i 0.2 -W 2 {b.ip}")
            if not re.search(r"\b0% packet loss", out):
                lost.append(f"{a.name}->{b.name}: {out.strip().splitlines()[-2:]}")
            m = re.search(r"= [\d.]+/([\d.]+)/", out)
            if m:
                rtts_ms.append(float(m.group(1)))
        assert not lost, f"ping loss: {lost}\n{_dump(net, log)}"
        LOG.info("MEASURED all-pairs ping 0%% loss, %d pairs, mean of avg rtt %.2f ms",
                    len(rtts_ms), sum(rtts_ms) / max(len(rtts_ms), 1))

        server_host = plan.host("cxh3")
        server = net.get("cxh3").popen([sys.executable, "-c", TCP_SERVER, server_host.ip,
                                        str(TCP_PORT)])
        try:
            out = net.get("cxh1").cmd(f"{sys.executable} -c '{TCP_CLIENT}' "
                                      f"{server_host.ip} {TCP_PORT}")
            assert "REPLY SDN-ICS" in out, f"TCP across cx1-cx2 failed: {out}\n{_dump(net, log)}"
        finally:
            if server.poll() is None:
                server.terminate()
            server.wait(timeout=5)

        flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "cx1"],
                               capture_output=True, text=True).stdout
        assert "idle_timeout=" in flows, f"learned flows must idle out:\n{flows}"
        _stop(net)
        stopped = True
        wait_for(lambda: all(f"switch disconnected dpid={d}" in log.read_text() for d in dpids),
                 CONNECT_TIMEOUT_S, f"switches {dpids} to be reported disconnected")
        text = log.read_text()
        assert not [m for m in ERROR_MARKERS if m in text], f"controller logged an error:\n{text}"
    finally:
        if not stopped:
            _stop(net)
