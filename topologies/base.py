"""A Mininet ``Topo`` built from an :class:`~topologies.plan.AddressPlan`, nothing else."""

from __future__ import annotations

from mininet.topo import Topo

from topologies.plan import AddressPlan


class PlanTopo(Topo):
    """Adds the plan's switches, hosts and links; ``build`` has no side effects.

    Hosts get the plan's IP (with prefix), MAC and no default route: an emulated host can
    reach its own subnet and nothing else.
    """

    def __init__(self, plan: AddressPlan, **opts: object) -> None:
        self.plan = plan
        super().__init__(**opts)

    def build(self, **_params: object) -> None:
        for sw in self.plan.switches:
            self.addSwitch(sw.name, dpid=sw.dpid, protocols="OpenFlow13")
        for a, b in self.plan.trunks:
            self.addLink(a, b)
        prefix = self.plan.prefixlen
        for h in self.plan.hosts:
            self.addHost(h.name, ip=f"{h.ip}/{prefix}", mac=h.mac, defaultRoute=None)
            self.addLink(h.name, h.switch)
