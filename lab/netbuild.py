"""Batched network build: Mininet's node, link and interface objects, made in bulk.

Mininet builds one thing at a time, each a round trip through a node's shell: a shell per
node started and awaited in turn, one ``ip link add`` per link typed into a shell, then per
host ``ifconfig`` for the MAC, the address, ``lo`` and ``up``. :class:`BatchMininet` keeps
the same objects (``Host``, ``OVSSwitch``, ``Link``, ``Intf``: ``net.get('h1').cmd(...)``,
``pingAll`` and the ``mininet>`` prompt work as before) and makes the same things in bulk:

- every node's shell is spawned first and all prompts are awaited together
  (:class:`DeferredShell`, :func:`finish_shells`);
- every veth pair is created, given its MACs and moved into its host's namespace by one
  ``ip -batch`` in the root namespace (:func:`veth_batch_lines`);
- each host is configured by one shell line (one ``ip -batch`` for ``lo``, MAC, address and
  ``up``, plus ``ethtool -K ... tx off`` for the userspace datapath), sent to every host before
  any answer is awaited (:func:`host_setup_command`);
- the switches' bridges and ports are one ``ovs-vsctl`` transaction (Mininet's batch startup).

What it creates is recorded by :mod:`lab.network` before it exists: bridges and switch-side
interface names before the build, each shell's pid right after it is spawned and before any
link is made (``on_shells``).
"""

from __future__ import annotations

import os
import pty
import select
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mininet.link import Intf, Link
from mininet.net import Mininet
from mininet.node import Host, Node

from common.errors import SetupError

SHELL_PROMPT = chr(127)  # Mininet's PS1 sentinel


@dataclass(frozen=True)
class VethEnd:
    """One end of a veth pair: name, MAC (None: the kernel's), namespace (None: root).

    netns_pid: the pid of the shell whose network namespace the end moves into.
    """

    name: str
    mac: str | None
    netns_pid: int | None


def veth_batch_lines(pairs: Iterable[tuple[VethEnd, VethEnd]]) -> list[str]:
    """``ip -batch`` lines creating each pair with its MACs, each end in its namespace, and
    bringing root-namespace ends up (a host's end is brought up inside its host).

    A pair with one end in a namespace is created with that end born there (``peer ...
    netns PID``): moving an existing interface between namespaces costs the kernel about
    20 ms each, creating it there does not.
    """
    create: list[str] = []
    place: list[str] = []
    for a, b in pairs:
        if a.netns_pid is not None and b.netns_pid is None:
            a, b = b, a
        addr_a = f" address {a.mac}" if a.mac else ""
        addr_b = f" address {b.mac}" if b.mac else ""
        born_b = f" netns {b.netns_pid}" if b.netns_pid is not None else ""
        create.append(f"link add name {a.name}{addr_a}"
                      f"{' netns ' + str(a.netns_pid) if a.netns_pid is not None else ''}"
                      f" type veth peer name {b.name}{addr_b}{born_b}")
        for end in (a, b):
            if end.netns_pid is None:
                place.append(f"link set dev {end.name} up")
    return create + place


def host_setup_command(intf: str, ip_cidr: str | None, mac: str | None,
                       tx_offload_off: bool, other_intfs: Sequence[str] = ()) -> str:
    """One shell line configuring a host: ``lo`` up, ``intf``'s MAC and address, ``intf`` up,
    and (userspace datapath) TX checksum offload off on all its interfaces.

    Prints nothing when everything worked: ``ip -batch`` errors go to the output, ethtool's
    are silenced (a missing ethtool shows later, as dropped TCP, and is checked by the
    platform check).
    """
    lines = ["link set dev lo up"]
    if mac:
        lines.append(f"link set dev {intf} address {mac}")
    if ip_cidr:
        lines.append(f"addr add {ip_cidr} dev {intf}")
    lines.append(f"link set dev {intf} up")
    cmd = "printf '%s\\n' " + " ".join(shlex.quote(ln) for ln in lines) + " | ip -batch -"
    if tx_offload_off:
        cmd += "".join(f"; ethtool -K {i} tx off >/dev/null 2>&1"
                       for i in (intf, *other_intfs))
    return cmd


class DeferredShell(Node):
    """A node whose shell is spawned without waiting for its prompt (:func:`finish_shells`).

    Mininet's ``startShell`` with the wait and the first command left out; the shell is the
    same (``mnexec``, ``bash --norc -is`` with the sentinel prompt on a pty). A command sent
    before the prompt (Mininet's switch brings its ``lo`` control interface up in its
    constructor) is kept and runs once the shell is up; its output is discarded.
    """

    early_cmds: list[str]

    def cmd(self, *args: object, **kwargs: object) -> str:
        if self.waiting and self.shell is not None and not getattr(self, "_prompted", True):
            self.early_cmds.append(" ".join(str(a) for a in args))
            return ""
        return super().cmd(*args, **kwargs)

    def startShell(self, mnopts: str | None = None) -> None:
        if self.shell:
            raise SetupError(f"{self.name}: shell is already running")
        opts = "-cd" if mnopts is None else mnopts
        if self.inNamespace:
            opts += "n"
        cmd = ["mnexec", opts, "env", "PS1=" + SHELL_PROMPT, "bash", "--norc", "--noediting",
               "-is", "mininet:" + self.name]
        self.master, self.slave = pty.openpty()
        self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                 close_fds=False)
        self.stdin = os.fdopen(self.master, "r")
        self.stdout = self.stdin
        self.pid = self.shell.pid
        self.pollOut = select.poll()
        self.pollOut.register(self.stdout)
        self.outToNode[self.stdout.fileno()] = self
        self.inToNode[self.stdin.fileno()] = self
        self.execed = False
        self.lastCmd = None
        self.lastPid = None
        self.readbuf = ""
        self.waiting = True  # until finish_shells has seen the prompt
        self._prompted = False
        self.early_cmds = []


class BatchHost(DeferredShell, Host):
    """A Mininet Host whose shell start is awaited in bulk."""


def finish_shells(nodes: Sequence[Node], timeout_s: float = 120.0) -> None:
    """Wait for every deferred shell's prompt at once, then send each its set-up line.

    SetupError naming the nodes whose shell did not answer within ``timeout_s``.
    """
    pending = {n.stdout.fileno(): n for n in nodes if n.waiting}
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    while pending:
        left_ms = (deadline - time.monotonic()) * 1000
        if left_ms <= 0:
            names = ", ".join(sorted(n.name for n in pending.values())[:5])
            raise SetupError(f"shell of {len(pending)} node(s) ({names}) did not start "
                             f"within {timeout_s:g} s")
        for fd, _ev in poller.poll(min(left_ms, 1000)):
            node = pending[fd]
            data = node.read(1024)
            if data and data[-1] == SHELL_PROMPT:
                poller.unregister(fd)
                del pending[fd]
                node.waiting = False
                node._prompted = True
    run_everywhere(nodes, lambda n: "; ".join(["unset HISTFILE; stty -echo; set +m",
                                               *getattr(n, "early_cmds", ())]))


def run_everywhere(nodes: Sequence[Node], command: Callable[[Node], str]) -> dict[str, str]:
    """Send ``command(node)`` to every node's shell, then collect every output (in parallel:
    each shell works while the others are sent theirs). Output per node name."""
    for node in nodes:
        node.sendCmd(command(node))
    return {node.name: node.waitOutput() for node in nodes}


class PendingLink(Link):
    """A Mininet Link whose veth pair is created later, with all others, by
    :meth:`BatchMininet.create_veths` (same names, same MACs, same objects)."""

    def makeIntfPair(self, *_args: object, **_kwargs: object) -> tuple[None, None]:
        return None, None


class QuietIntf(Intf):
    """An Intf that records its settings instead of typing them into a shell at creation
    (the batch applies them); afterwards it behaves like Mininet's."""

    def config(self, mac: str | None = None, ip: str | None = None, **_params: object) -> dict:
        if mac:
            self.mac = mac
        if ip:
            self.ip, _, plen = ip.partition("/")
            self.prefixLen = int(plen) if plen else 8
        return {}


def veth_ends(link: Link) -> tuple[VethEnd, VethEnd]:
    """The two ends of a Mininet link as :class:`VethEnd` records."""
    def end(intf: Intf) -> VethEnd:
        node = intf.node
        return VethEnd(intf.name, intf.mac, node.pid if node.inNamespace else None)
    return end(link.intf1), end(link.intf2)


class BatchMininet(Mininet):
    """Mininet with the build batched (see the module docstring); use with
    ``host=BatchHost``, a switch class derived from :class:`DeferredShell`,
    ``link=PendingLink`` and ``intf=QuietIntf``.

    tx_offload_off: turn TX checksum offload off on every host interface (userspace
        datapath: TCP with unfilled checksums is dropped otherwise).
    on_shells: called with every host and switch once its shell is spawned, before any
        link exists (the lab records the shells' pids there).
    """

    def __init__(self, *args: object, tx_offload_off: bool = False,
                 on_shells: Callable[[list[Node]], None] = lambda _nodes: None,
                 **kwargs: object) -> None:
        self.tx_offload_off = tx_offload_off
        self.on_shells = on_shells
        self.build_timeline_s: dict[str, float] = {}
        super().__init__(*args, **kwargs)

    def buildFromTopo(self, topo=None) -> None:
        topo = topo or self.topo
        t0 = time.monotonic()
        for name in topo.hosts():
            self.addHost(name, **topo.nodeInfo(name))
        for name in topo.switches():
            params = topo.nodeInfo(name)
            params.setdefault("batch", True)
            self.addSwitch(name, **params)
        nodes = [*self.hosts, *self.switches]
        self.on_shells(nodes)
        finish_shells(nodes)
        t1 = time.monotonic()
        for _src, _dst, params in topo.links(sort=True, withInfo=True):
            self.addLink(**params)
        self.create_veths(self.links)
        self.build_timeline_s.update(shells_s=t1 - t0, links_s=time.monotonic() - t1)

    def create_veths(self, links: Sequence[Link]) -> None:
        """Every pair in one ``ip -batch`` (root namespace); SetupError with ip's message."""
        text = "\n".join(veth_batch_lines(veth_ends(link) for link in links)) + "\n"
        res = subprocess.run(["ip", "-batch", "-"], input=text, capture_output=True,
                             text=True, timeout=600, check=False)
        if res.returncode != 0:
            raise SetupError(f"creating {len(links)} veth pairs failed: "
                             f"{res.stderr.strip().splitlines()[:2]}")

    def configHosts(self) -> None:
        t0 = time.monotonic()
        outputs = run_everywhere(self.hosts, self._host_command)
        bad = {name: out.strip() for name, out in outputs.items() if out.strip()}
        if bad:
            name, out = next(iter(bad.items()))
            raise SetupError(f"configuring {len(bad)} host(s) failed, {name}: {out[:200]}")
        self.build_timeline_s["hosts_s"] = time.monotonic() - t0

    def _host_command(self, host: Node) -> str:
        intf = host.defaultIntf()
        if intf is None:
            return "ip link set dev lo up"
        ip = host.params.get("ip")
        mac = host.params.get("mac")
        intf.config(mac=mac, ip=ip)
        others = [i for i in host.intfNames() if i not in ("lo", intf.name)]
        return host_setup_command(intf.name, ip, mac, self.tx_offload_off, others)
