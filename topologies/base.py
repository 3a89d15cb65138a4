"""A Mininet ``Topo`` built from an :class:`~common.plan.AddressPlan`, nothing else."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mininet.topo import Topo

from common.plan import AddressPlan


class PlanTopo(Topo):
    """Adds the plan's switches, hosts and links; ``build`` has no side effects.

    Hosts get the plan's IP (with prefix), MAC and no default route: an emulated host can
    reach its own subnet and nothing else.

    switch_prefix: prepended to every switch name (OVS bridge and its ports live in the root
        namespace, so two networks on one machine need different switch names; host names
        live in their own namespaces and never clash). Empty by default: ``s1`` as typed.
    """

    def __init__(self, plan: AddressPlan, switch_prefix: str = "", **opts: object) -> None:
        self.plan = plan
        self.switch_prefix = switch_prefix
        super().__init__(**opts)

    def switch_name(self, plan_name: str) -> str:
        return f"{self.switch_prefix}{plan_name}"

    def build(self, **_params: object) -> None:
        for sw in self.plan.switches:
            self.addSwitch(self.switch_name(sw.name), dpid=sw.dpid, protocols="OpenFlow13")
        for (a, b), (port_a, port_b) in zip(self.plan.trunks, self.plan.trunk_ports(),
                                            strict=True):
            self.addLink(self.switch_name(a), self.switch_name(b), port1=port_a, port2=port_b)
        prefix = self.plan.prefixlen
        ports = self.plan.edge_ports()
        for h in self.plan.hosts:
            self.addHost(h.name, ip=f"{h.ip}/{prefix}", mac=h.mac, defaultRoute=None)
            self.addLink(h.name, self.switch_name(h.switch), port1=0, port2=ports[h.name][1])


def hand_over_to_lab_mode(topo: str, argv: Sequence[str] | None = None) -> int:
    """Replace this process by lab mode (``python -m lab``) on ``topo``; never returns.

    ``python -m topologies.ics --cli`` stays the instructors' entry point, while the lab
    runtime lives above this package: an exec keeps the import graph one-way.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    os.execv(sys.executable, [sys.executable, "-m", "lab", "--entry-point", topo, *args])
    return 1  # not reached
