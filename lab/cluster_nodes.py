"""A lab network spread over cluster servers, on Mininet's own cluster mode.

Built on ``mininet.examples.cluster`` (``MininetCluster``, ``RemoteHost``,
``RemoteOVSSwitch``, ``RemoteLink``; imported through :mod:`lab.cluster_compat`), subclassed
only where this project needs it:

* ssh with the cluster file's key and private known_hosts, no agent forwarding, no ``sudo -u``
  on the head; never ``~/.ssh`` (``MininetCluster`` would create ``~/.ssh/mn``);
* the userspace datapath and TX offload off on every host, as on one machine;
* processes started in a remote host (``popen``) run from the server's project checkout
  with its interpreter, and a SIGTERM to the local handle reaches the remote process;
* every bridge, switch port and host namespace is recorded per server in the run state
  (:class:`lab.runstate.ServerRecord`) and removed over ssh by :mod:`lab.teardown`;
  ``ClusterCleanup``'s ``ssh server sudo mn -c`` is taken out of Mininet's clean-up hooks;
* cross-server links: Mininet's ``ssh -w`` tap tunnels (:class:`SshTunnelLink`) or VXLAN
  devices (:class:`VxlanLink`: kernels without GRE, no server-to-server ssh).
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import signal
import subprocess
import sys
from functools import partial
from itertools import groupby
from operator import attrgetter
from typing import Any

import mininet.clean
from mininet.net import Mininet
from mininet.node import OVSSwitch

from common.errors import SetupError
from common.plan import AddressPlan
from lab.cluster import ClusterSpec, ServerSpec, place
from lab.cluster_compat import (
    ClusterCleanup,
    MininetCluster,
    RemoteHost,
    RemoteLink,
    RemoteOVSSwitch,
)
from lab.network import ReadyController, disable_tx_offload
from lab.runstate import RunState
from topologies.base import PlanTopo

log = logging.getLogger(__name__)

VXLAN_MTU = 1450  # 1500-byte underlay minus the VXLAN/UDP/IP/Ethernet headers
VXLAN_PORT = 4789
SHELL_EXIT_S = 5.0  # how long a node's ssh shell gets to end on SIGHUP before SIGKILL
VNI_BLOCK = 1024  # VNIs per run: more than the links of the largest plan (1000 hosts + trunks)
VNI_BASE = 4096 + (os.getpid() % 16000) * VNI_BLOCK  # 24-bit VNIs: at most 16,387,072 + 1024
# Remote side of a host process: the command runs in the background; when the head closes
# our stdin (its SIGTERM) or the ssh connection drops, the command gets SIGTERM.
REMOTE_WRAPPER = ('exec 3<&0; "$@" </dev/null & p=$!; '
                  '(read -r _ <&3; kill -TERM $p) 2>/dev/null & w=$!; '
                  'wait $p; s=$?; kill $w 2>/dev/null; exit $s')


def defuse_cluster_cleanup() -> None:
    """Take ``ClusterCleanup.cleanup`` (``ssh server sudo mn -c``) out of Mininet's hooks."""
    callbacks = mininet.clean.Cleanup.callbacks
    while ClusterCleanup.cleanup in callbacks:
        callbacks.remove(ClusterCleanup.cleanup)


def ssh_command(cluster: ClusterSpec, server: ServerSpec) -> list[str]:
    """The ssh client command that runs one command on ``server`` (no pty)."""
    return ["ssh", "-q", *cluster.ssh_options, f"{server.user}@{server.address}"]


class RemotePopen(subprocess.Popen):
    """A process in a remote host: SIGTERM/SIGINT close its stdin pipe, which the remote
    wrapper turns into a SIGTERM there; ``wait`` then waits for the remote exit."""

    eof_fd: int | None = None

    def _eof(self) -> None:
        if self.eof_fd is not None:
            try:
                os.close(self.eof_fd)
            except OSError:
                pass
            self.eof_fd = None

    def send_signal(self, sig: int) -> None:
        self._eof()
        if sig not in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            super().send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self._eof()
        return code


class _ClusterSsh:
    """Mixin before Mininet's RemoteMixin: our ssh options, no ``sudo -u`` on the head."""

    def __init__(self, name: str, ssh_options: tuple[str, ...] = (),
                 server_spec: ServerSpec | None = None, state: RunState | None = None,
                 **kwargs: Any) -> None:
        self.sshbase = ["ssh", "-q", *ssh_options, "-tt"]
        self.server_spec = server_spec
        self.run_state = state
        super().__init__(name, **kwargs)
        defuse_cluster_cleanup()

    def startShell(self, *args: Any, **kwargs: Any) -> None:
        """Mininet's, with the shell's ssh client recorded the moment it exists: a run stopped
        in the middle of the build (SIGTERM) still ends every shell made so far, and with it
        the server side of the session."""
        try:
            super().startShell(*args, **kwargs)
        finally:  # also when interrupted while waiting for the shell's first output
            shell = getattr(self, "shell", None)
            if self.run_state is not None and shell is not None:
                self.run_state.add_process(shell.pid, f"shell:ssh:{self.name}")

    def terminate(self) -> None:
        """SIGHUP to the shell's ssh client itself: Mininet's ``killpg`` assumes the shell leads
        a process group (``mnexec -d`` does that locally), which an ssh client does not, and the
        ProcessLookupError stopped the teardown at the first node. Mininet's ``cleanup`` then
        waits for the shell without a time-out, and once (a CI run at load average 100) an ssh
        client did not end on SIGHUP and the teardown waited forever: it gets
        ``SHELL_EXIT_S``, then SIGKILL (sshd ends the server side when the connection drops)."""
        shell = getattr(self, "shell", None)
        if shell is not None and shell.poll() is None:
            try:
                os.kill(shell.pid, signal.SIGHUP)
                shell.wait(timeout=SHELL_EXIT_S)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                log.warning("%s: ssh shell %d still running %g s after SIGHUP: SIGKILL",
                            self.name, shell.pid, SHELL_EXIT_S)
                shell.kill()
                shell.wait(timeout=SHELL_EXIT_S)
        self.cleanup()

    @property
    def sshcmd(self) -> list[str]:
        return [*self.sshbase, self.dest] if getattr(self, "dest", None) else []

    @sshcmd.setter
    def sshcmd(self, _value: list[str]) -> None:
        """RemoteMixin sets ``sudo -E -u user ssh ...``; we are root and use our own key."""


class ClusterHost(_ClusterSsh, RemoteHost):
    """A RemoteHost whose processes run from the server's project checkout."""

    def popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        if not self.isRemote:
            return super().popen(*args, **kwargs)
        cmd = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else (
            args[0].split() if len(args) == 1 else list(args))
        kwargs.pop("env", None)  # a local environment means nothing on the server
        spec = self.server_spec
        assert spec is not None
        if cmd and cmd[0] == sys.executable:
            cmd[0] = spec.interpreter
        env = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("SDNICS_")]
        remote = ["mnexec", "-a", str(self.pid), "env", "-C", spec.project_dir,
                  f"PYTHONPATH={spec.project_dir}", *env, *cmd]
        line = f"sh -c {shlex.quote(REMOTE_WRAPPER)} sh {shlex.join(remote)}"
        params: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        params.update(kwargs)
        read_fd, write_fd = os.pipe()
        try:
            proc = RemotePopen([*self.sshbase[:-1], self.dest, line], stdin=read_fd,
                               start_new_session=True, **params)
        finally:
            os.close(read_fd)
        proc.eof_fd = write_fd
        return proc


def _run_over_ssh(node: Any, cmd: str, **_kwargs: Any) -> str:
    """Run one shell command on ``node``'s server as an ssh argument, never typed into the
    node's pty (a pty line holds 4095 bytes; a 250-port bridge's ``ovs-vsctl`` is longer)."""
    res = subprocess.run([*node.sshbase[:-1], node.dest, cmd], capture_output=True, text=True,
                         timeout=120, check=False, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise SetupError(f"{node.server}: {cmd[:80]}...: {res.stderr.strip()[:200]}")
    return res.stdout + res.stderr


class ClusterSwitch(_ClusterSsh, RemoteOVSSwitch):
    """A RemoteOVSSwitch (the lab sets the userspace datapath and secure fail mode) whose
    batched ``ovs-vsctl`` runs as an ssh argument: Mininet's ``batchStartup`` types it into the
    switch's shell, and past about 50 ports the pty cut it off, so no bridge was made and the
    switch never connected (docs/platform-notes.md)."""

    @classmethod
    def batchStartup(cls, switches: Any, **_kwargs: Any) -> Any:
        key = attrgetter("server")
        for _server, group in groupby(sorted(switches, key=key), key):
            members = tuple(group)
            OVSSwitch.batchStartup(members, run=partial(_run_over_ssh, members[0]))
        return switches


class _NoProcess:
    """Stands in for a tunnel process where the tunnel is a kernel device (VXLAN)."""

    def terminate(self) -> None:
        return None

    def poll(self) -> int:
        return 0


class _RecordedLink(RemoteLink):
    """A RemoteLink that records its tunnel process in the run state."""

    def __init__(self, node1: Any, node2: Any, state: RunState | None = None,
                 ssh_options: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.state = state
        self.ssh_options = ssh_options
        super().__init__(node1, node2, **kwargs)


class SshTunnelLink(_RecordedLink):
    """Mininet's ``ssh -w`` tap tunnel, with our ssh options and its process recorded.

    Each end is created as ``tap9`` on its server, moved and renamed: links are made one at a
    time (Mininet builds them in order), never two ``tap9`` at once on one server.
    """

    def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                   addr1: str | None = None, addr2: str | None = None) -> Any:
        for node in (node1, node2):
            out = node.rcmd(f"ip tuntap add dev tap9 mode tap user {node.user}")
            if out.strip():
                raise SetupError(f"{node.server}: cannot create tap9: {out.strip()}")
        dest = f"{node2.user}@{node2.serverIP}"
        cmd = ["ssh", "-n", *self.ssh_options, "-o", "Tunnel=Ethernet", "-w", "9:9", dest,
               "echo @"]
        tunnel = node1.rpopen(cmd, sudo=False)
        if self.state is not None:
            self.state.add_process(tunnel.pid, f"tunnel:{intfname1}={intfname2}")
        ch = tunnel.stdout.read(1).decode(errors="replace")
        if ch != "@":
            rest = tunnel.stdout.read().decode(errors="replace") if tunnel.poll() else ""
            raise SetupError(f"ssh tunnel {node1.server} -> {node2.server} failed: "
                             f"{(ch + rest).strip()[:200]}")
        for node in (node1, node2):
            self.moveIntf("tap9", node)
        for node, intf, addr in ((node1, intfname1, addr1), (node2, intfname2, addr2)):
            out = node.cmd(f"ip link set tap9 name {intf}" + (f" address {addr}" if addr else ""))
            if out.strip():
                raise SetupError(f"{node.server}: cannot rename tap9 to {intf}: {out.strip()}")
        return tunnel


class VxlanLink(_RecordedLink):
    """A cross-server link as a pair of VXLAN devices (one VNI per link, UDP 4789).

    For kernels without GRE (Mininet's RemoteGRELink needs ``gretap``); the servers need no
    ssh to each other, only UDP 4789 between them and an underlay MTU of 1500 or more.
    """

    # One block of VNIs per process, so two runs on one cluster (other switch prefixes) never
    # make two tunnels with one VNI between the same servers.
    vnis = itertools.count(VNI_BASE)

    def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                   addr1: str | None = None, addr2: str | None = None) -> Any:
        vni = next(self.vnis)
        for node, intf, addr, local, remote in (
                (node1, intfname1, addr1, node1.serverIP, node2.serverIP),
                (node2, intfname2, addr2, node2.serverIP, node1.serverIP)):
            # One ssh round trip per end (create, address, MTU, move into the node): each
            # costs about a second on a busy machine, and a star of 250 has 250 links.
            steps = [f"ip link add {intf} type vxlan id {vni} local {local} remote {remote} "
                     f"dstport {VXLAN_PORT}",
                     *([f"ip link set {intf} address {addr}"] if addr else []),
                     f"ip link set {intf} mtu {VXLAN_MTU} up",
                     f"ip link set {intf} netns {node.pid}"]
            out = node.rcmd("sh -c " + shlex.quote(" && ".join(steps)))
            if out.strip():
                raise SetupError(f"{node.server}: cannot create VXLAN {intf}: {out.strip()}")
        return _NoProcess()


LINKS = {"ssh": SshTunnelLink, "vxlan": VxlanLink}


class LabCluster(MininetCluster):
    """MininetCluster with a given placement, no ``~/.ssh/mn`` and no ``sudo``-based precheck
    (:func:`check_servers` does it with our ssh options and one-line errors)."""

    def __init__(self, *, cluster: ClusterSpec, node_server: dict[str, str],
                 state: RunState | None = None, **params: Any) -> None:
        self.cluster = cluster
        self.run_state = state
        self.node_server = node_server
        self.servers = [s.name for s in cluster.servers]
        self.serverIP = {s.name: s.address for s in cluster.servers}
        self.user = "root"
        self.connections: dict = {}
        self.placement = None
        Mininet.__init__(self, **params)

    def placeNodes(self) -> None:
        for node in self.topo.nodes():
            spec = self.cluster.server(self.node_server[node])
            config = self.topo.nodeInfo(node)
            config.update(server=spec.name, serverIP=spec.address, user=spec.user,
                          ssh_options=tuple(self.cluster.ssh_options), server_spec=spec,
                          state=self.run_state)


def _run_on(cluster: ClusterSpec, server: ServerSpec, script: str,
            timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([*ssh_command(cluster, server), "sh -c " + shlex.quote(script)],
                              capture_output=True, text=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SetupError(f"{server.name} ({server.address}): no answer over ssh within "
                         f"{timeout_s:g} s") from None


def check_servers(cluster: ClusterSpec, bridges: dict[str, list[str]]) -> None:
    """Every server answers over ssh, has Mininet and OVS, and none of the bridges this run
    will create there; SetupError (one line) otherwise. Nothing is created."""
    for server in cluster.servers:
        res = _run_on(cluster, server, "command -v mnexec >/dev/null || echo 'no mnexec'; "
                      "command -v sudo >/dev/null || echo 'no sudo'; "
                      "ovs-vsctl --timeout=5 list-br || echo 'no ovs'")
        if res.returncode == 255:
            raise SetupError(f"{server.name}: ssh {server.user}@{server.address} failed: "
                             f"{res.stderr.strip()[:160] or 'no detail'} (docs/cluster.md)")
        lines = res.stdout.split()
        for problem in ("mnexec", "sudo", "ovs"):
            if f"no {problem}" in res.stdout.replace("\n", " "):
                raise SetupError(f"{server.name}: {problem} is missing or not running there; "
                                 "run 'make setup' and start OVS on it (docs/cluster.md)")
        clash = sorted(set(bridges.get(server.name, [])) & set(lines))
        if clash:
            raise SetupError(f"{server.name}: OVS bridge {clash[0]} already exists and is "
                             "not this run's; if a crashed run left it: python -m "
                             "experiments.clean")


def _placement(topo: PlanTopo, plan: AddressPlan, cluster: ClusterSpec) -> dict[str, str]:
    by_plan = place(plan, cluster)
    switch_names = {s.name for s in plan.switches}
    return {topo.switch_name(k) if k in switch_names else k: v for k, v in by_plan.items()}


def new_cluster_network(plan: AddressPlan, state: RunState, cluster: ClusterSpec, *,
                        ofp_port: int, datapath: str, switch_prefix: str = "") -> LabCluster:
    """The plan's network over the cluster's servers, not built yet; what it will create
    on each server is recorded in ``state`` first. Start with :func:`start_cluster_network`."""
    topo = PlanTopo(plan, switch_prefix=switch_prefix)
    node_server = _placement(topo, plan, cluster)
    switches = set(topo.switches())
    bridges = {s.name: [n for n in topo.switches() if node_server[n] == s.name]
               for s in cluster.servers}
    check_servers(cluster, bridges)
    interfaces: dict[str, list[str]] = {s.name: [] for s in cluster.servers}
    for src, dst, info in topo.links(sort=False, withKeys=False, withInfo=True):
        cross = node_server[src] != node_server[dst]
        for node, port in ((src, info["port1"]), (dst, info["port2"])):
            if node in switches or cross:  # a cross-server end starts in the root namespace
                interfaces[node_server[node]].append(f"{node}-eth{port}")
    for server in cluster.servers:
        rec = state.server(server.name, ssh_command(cluster, server))
        rec.bridges.extend(bridges[server.name])
        rec.interfaces.extend(interfaces[server.name])
        if cluster.link == "ssh":
            rec.interfaces.append("tap9")  # only if a failed tunnel left it behind
    state.save()
    switch = partial(ClusterSwitch, datapath=datapath, failMode="secure",
                     protocols="OpenFlow13")
    link = partial(LINKS[cluster.link], state=state, ssh_options=tuple(cluster.ssh_options))
    net = LabCluster(cluster=cluster, node_server=node_server, state=state, topo=topo,
                     switch=switch, host=ClusterHost, link=link, controller=None, build=False,
                     autoSetMacs=False, autoStaticArp=False, waitConnected=False,
                     cleanup=False)
    net.addController(ReadyController("c0", ip=cluster.controller_address, port=ofp_port))
    return net


def record_cluster_nodes(state: RunState, net: LabCluster) -> None:
    """Record each remote host's namespace (per server); each node's local ssh client is
    recorded as its shell starts (``_ClusterSsh.startShell``)."""
    by_server: dict[str, list[Any]] = {}
    for h in net.hosts:
        by_server.setdefault(h.server, []).append(h)
    for name, hosts in by_server.items():
        spec = net.cluster.server(name)
        script = "; ".join(f"readlink /proc/{h.pid}/ns/net" for h in hosts)
        res = _run_on(net.cluster, spec, script)
        rec = state.server(name, ssh_command(net.cluster, spec))
        rec.netns.extend(ns for ns in res.stdout.split() if ns.startswith("net:["))
    state.save()


def start_cluster_network(net: LabCluster, state: RunState, datapath: str,
                          before_switches: Any = lambda: None) -> None:
    """Build (recording every node), wait in ``before_switches``, start the switches; TX
    offload off (userspace datapath) and, on VXLAN links, the hosts' MTU lowered to fit."""
    net.build()
    record_cluster_nodes(state, net)
    before_switches()
    net.start()
    if datapath == "user":
        disable_tx_offload(net)
    if net.cluster.link == "vxlan":
        for h in net.hosts:
            for intf in h.intfNames():
                if intf != "lo":
                    h.cmd(f"ip link set {intf} mtu {VXLAN_MTU}")


def stop_cluster_network(net: LabCluster) -> None:
    """Bridges per server, tunnels, then every node's ssh shell; what remains (switch-side
    tunnel ends, processes in host namespaces) goes with the run state's per-server record."""
    switches = [s for s in net.switches if isinstance(s, ClusterSwitch)]
    if switches:
        ClusterSwitch.batchShutdown(switches)
    tunnels = [t for t in (getattr(link, "tunnel", None) for link in net.links)
               if isinstance(t, subprocess.Popen)]
    for tunnel in tunnels:
        tunnel.terminate()
    for tunnel in tunnels:  # reaped here: an unreaped one looks alive to the run-state clean-up
        try:
            tunnel.wait(timeout=3)
        except subprocess.TimeoutExpired:
            tunnel.kill()
            tunnel.wait(timeout=3)
    for node in (*net.switches, *net.hosts, *net.controllers):
        node.terminate()
