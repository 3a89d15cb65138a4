"""A topology from a plant file: its zones are the switches, its trunks the links between them.

    sudo PYTHONPATH=. mn --custom topologies/plant.py --topo plant,plants/treatment.yaml \\
        --switch ovs,datapath=user

Only the network part of the file matters here (zones, trunks, hosts, addresses, MACs); the
file is still checked whole, but the process kinds are checked by ``plant-check``, lab mode
and the experiments, which know the PLCs (a topology imports only the neutral layer).
"""

from __future__ import annotations

from common.plant import load_plant
from topologies.base import PlanTopo


class PlantTopo(PlanTopo):
    """The hosts and zones of the plant file ``path``."""

    def __init__(self, path: str = "plants/water.yaml", **opts: object) -> None:
        super().__init__(load_plant(path), **opts)


TOPOS = {"plant": PlantTopo}
topos = TOPOS  # the name `mn --custom` looks for
