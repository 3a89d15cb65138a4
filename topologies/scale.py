"""Scale topologies: ``star`` (one switch, N hosts) and ``linear`` (N switches in a chain).

    sudo PYTHONPATH=. mn --custom topologies/scale.py --topo star,50 --switch ovs,datapath=user
"""

from __future__ import annotations

from common.plan import linear_plan, star_plan
from topologies.base import PlanTopo


class StarTopo(PlanTopo):
    """One switch with ``n`` hosts h1..hN; hN is the attacker."""

    def __init__(self, n: int = 10, **opts: object) -> None:
        super().__init__(star_plan(int(n)), **opts)


class LinearTopo(PlanTopo):
    """``n`` switches in a chain, one host on each; hN is the attacker."""

    def __init__(self, n: int = 4, **opts: object) -> None:
        super().__init__(linear_plan(int(n)), **opts)


TOPOS = {"star": StarTopo, "linear": LinearTopo}
topos = TOPOS  # the name `mn --custom` looks for
