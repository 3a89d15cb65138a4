"""All topologies by name, with their plans."""

from __future__ import annotations

from topologies.base import PlanTopo
from topologies.plan import plan_for


def build_topo(name: str, n_hosts: int | None = None) -> PlanTopo:
    """The ``Topo`` for a named topology; raises ``PlanError`` for unknown names/sizes."""
    return PlanTopo(plan_for(name, n_hosts))
