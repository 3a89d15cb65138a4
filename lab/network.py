"""The emulated network of a lab: build it from the plan (recorded before it is created) and
stop it.

:func:`new_network` makes the plan's Mininet network on Open vSwitch with one remote
controller on 127.0.0.1, :func:`start_network` builds and starts it, :func:`stop_network`
takes it down. The build is batched (:mod:`lab.netbuild`: shells spawned together, veth
pairs made by one ``ip -batch``, one set-up line per host) unless links need netem, which
takes Mininet's own per-link path. The bridges and switch ports are recorded in the run
state before they are created (:func:`record_planned_network`) and every node's shell as
soon as it is spawned, before any link exists (:func:`record_shells`), so ``python -m
experiments.clean`` can finish the job after a crash. The controller process and the
processes started inside the hosts are the lifecycle's (:mod:`lab.lifecycle`, :mod:`lab.processes`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from mininet.node import OVSSwitch, RemoteController
from mininet.util import quietRun

from common.errors import SetupError
from common.plan import AddressPlan
from lab.netbuild import BatchHost, BatchMininet, DeferredShell, PendingLink, QuietIntf
from lab.runstate import RunState
from lab.teardown import existing_bridges, interface_exists
from topologies.base import PlanTopo

if TYPE_CHECKING:
    from mininet.net import Mininet

# Set to run a second lab beside a first one (tests, parallel helpers): bridges get the
# prefix (``t1s1``), so neither network touches the other's switches or ports.
SWITCH_PREFIX_ENV = "SDNICS_SWITCH_PREFIX"


class ReadyController(RemoteController):
    """A RemoteController that does not probe the controller port.

    Mininet's check pipes ``echo A | telnet`` into the port and decodes whatever comes back as
    UTF-8 in its shell: the controller answers with a binary OpenFlow HELLO whose random xid
    makes that decode fail now and then (a UnicodeDecodeError in ``Node.read``). The lab has
    already waited for the launcher's ``controller ready`` line, logged once it listens.
    """

    def checkListening(self) -> None:
        return None


class LabSwitch(OVSSwitch):
    """OVSSwitch whose ``ovs-vsctl`` calls run as subprocesses, not through the node's shell.

    Mininet types ``ovs-vsctl ...`` into the switch's bash over a pty, and a pty line holds at
    most 4095 bytes: a switch with more than about 50 ports (one ``add-port`` clause each)
    got a truncated command, no bridge, and a lab that never connected. Same command, same
    shell quoting, no length limit.
    """

    def vsctl(self, *args: object, **kwargs: object) -> str | None:
        if self.batch:
            return super().vsctl(*args, **kwargs)
        cmd = " ".join(str(arg).strip() for arg in args)
        return quietRun(f"ovs-vsctl {cmd}", shell=True)


class BatchSwitch(DeferredShell, LabSwitch):
    """A LabSwitch whose shell start is awaited in bulk (:class:`~lab.netbuild.BatchMininet`)."""


def planned_interfaces(topo: PlanTopo) -> list[str]:
    """Root-namespace interface names Mininet will create for ``topo`` (switch ports).

    Mininet names an interface ``<node>-eth<port>`` with the port the Topo assigned, so the
    names are known before anything is built.
    """
    switches = set(topo.switches())
    names = []
    for src, dst, info in topo.links(sort=False, withKeys=False, withInfo=True):
        for node, port in ((src, info["port1"]), (dst, info["port2"])):
            if node in switches:
                names.append(f"{node}-eth{port}")
    return names


def record_planned_network(state: RunState, topo: PlanTopo) -> None:
    """Record the bridges and switch ports ``topo`` will create, before anything is built.

    SetupError when one of them exists already: it is not this run's, and this run's teardown
    (or ``experiments.clean``) would remove it.
    """
    clash = sorted(set(topo.switches()) & existing_bridges())
    if clash:
        raise SetupError(f"OVS bridge(s) {', '.join(clash)} already exist and are not this "
                         "run's; if a crashed run left them, run: python -m experiments.clean")
    intfs = planned_interfaces(topo)
    clash_if = [i for i in intfs if interface_exists(i)]
    if clash_if:
        raise SetupError(f"interface(s) {', '.join(clash_if[:3])} already exist; if a "
                         "crashed run left them, run: python -m experiments.clean")
    state.add_bridges(list(topo.switches()))
    state.add_interfaces(intfs)


def record_shells(state: RunState, nodes: list) -> None:
    """Record the shells of ``nodes`` (one run-state write)."""
    state.add_processes([(node.pid, f"shell:{node.name}") for node in nodes
                         if getattr(node, "pid", None)])


def record_node_shells(state: RunState, net: Mininet) -> None:
    """Record the shell of every node of a built Mininet ``net`` for crash clean-up.

    Every node owns one: hosts in their namespaces, switches and a controller stand-in in the
    root one (``experiments.clean`` ends them, a crashed run's switch shells included).
    """
    nodes = (*net.hosts, *net.switches, *net.controllers)
    state.add_processes([(node.pid, f"shell:{node.name}") for node in nodes
                         if getattr(node, "pid", None)])


def quiet_mininet() -> None:
    """Mininet logs warnings and errors only (its info lines would flood a run's output)."""
    from mininet.log import setLogLevel

    setLogLevel("warning")


def new_network(plan: AddressPlan, state: RunState, *, ofp_port: int, datapath: str,
                switch_prefix: str = "", link_delay_ms: float = 0.0,
                link_loss_pct: float = 0.0) -> Mininet:
    """The plan's Mininet network, not built yet, its switches to connect to
    127.0.0.1:``ofp_port``; its bridges and switch ports are recorded in ``state`` first.

    SetupError when a bridge or port exists already, or the prefix is not 1-4
    letters/digits. Link delay or loss needs netem (a TCLink). Start it with
    :func:`start_network`; stop it with :func:`stop_network`, also when starting failed.
    """
    from mininet.link import Link, TCLink
    from mininet.net import Mininet

    if switch_prefix and not (switch_prefix.isalnum() and len(switch_prefix) <= 4):
        raise SetupError(f"{SWITCH_PREFIX_ENV} must be 1-4 letters/digits, "
                         f"not {switch_prefix!r}")
    topo = PlanTopo(plan, switch_prefix=switch_prefix)
    # Record before creating: a crash between here and teardown stays cleanable.
    record_planned_network(state, topo)

    link_cls = Link
    link_opts: dict[str, object] = {}
    if link_delay_ms or link_loss_pct:
        link_cls = TCLink
        if link_delay_ms:
            link_opts["delay"] = f"{link_delay_ms:g}ms"
        if link_loss_pct:
            link_opts["loss"] = link_loss_pct
    switch_opts = {"datapath": datapath, "failMode": "secure", "protocols": "OpenFlow13"}
    common = {"topo": topo, "controller": None, "build": False, "autoSetMacs": False,
              "autoStaticArp": False, "waitConnected": False, "cleanup": False}
    if link_opts:
        # netem links are configured per interface through tc: Mininet's own path.
        net = Mininet(switch=partial(LabSwitch, **switch_opts),
                      link=partial(link_cls, **link_opts), **common)
    else:
        net = BatchMininet(switch=partial(BatchSwitch, **switch_opts), host=BatchHost,
                           link=PendingLink, intf=QuietIntf,
                           tx_offload_off=(datapath == "user"),
                           on_shells=partial(record_shells, state), **common)
    net.addController(ReadyController("c0", ip="127.0.0.1", port=ofp_port))
    return net


def start_network(net: Mininet, state: RunState, datapath: str,
                  before_switches: Callable[[], None] = lambda: None) -> None:
    """Build ``net`` (hosts, links; every node's shell recorded in ``state``), run
    ``before_switches()`` (the lifecycle waits there for the controller to listen), then start
    the switches."""
    batched = isinstance(net, BatchMininet)
    net.build()
    # A batched build recorded each shell as it was spawned, the controller stand-in's too.
    if batched:
        record_shells(state, net.controllers)
    else:
        record_node_shells(state, net)
    before_switches()
    net.start()
    if datapath == "user" and not batched:
        disable_tx_offload(net)


def disable_tx_offload(net: Mininet) -> None:
    """TX checksum offload off on every host interface (userspace datapath: TCP segments with
    offloaded, unfilled checksums are dropped).

    Sent to every host's shell first, then awaited: the hosts work in parallel.
    """
    for h in net.hosts:
        intfs = [i for i in h.intfNames() if i != "lo"]
        h.sendCmd("; ".join(f"ethtool -K {i} tx off >/dev/null 2>&1" for i in intfs)
                  or "true")
    for h in net.hosts:
        h.waitOutput()


def stop_network(net: Mininet) -> None:
    """Bridges first (one ovs-vsctl call), then every node's shell.

    Unlike ``Mininet.stop()``, no ``ip link del`` per link (about 10 ms each, 2 s at 100
    hosts): a host's veth pair disappears with its namespace once its shell is gone, and
    what the kernel has not removed yet (trunks between switches, stragglers) is deleted
    from the run-state record right after.
    """
    switches = [s for s in net.switches if isinstance(s, OVSSwitch)]
    if switches:
        LabSwitch.batchShutdown(switches)
    rest = [n for n in (*net.switches, *net.hosts, *net.controllers) if n not in switches]
    # Hang up every shell first, then reap them: the shells exit in parallel.
    for node in rest:
        if node.shell is not None and node.shell.poll() is None:
            try:
                os.killpg(node.shell.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
    for node in rest:
        node.terminate()
