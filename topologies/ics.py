"""The default ICS topology and the classic single-switch lab.

``ics``: supervisory zone switch s1 (hmi, ews, historian, attacker) trunked to control zone
switch s2 (plc1, plc2). ``classic``: one switch, h1-h4 at 10.0.0.1-4.

Works with ``mn`` too (from the repository root, so ``topologies`` imports)::

    sudo PYTHONPATH=. mn --custom topologies/ics.py --topo ics --switch ovs,datapath=user
"""

from __future__ import annotations

from common.plan import classic_plan, ics_plan
from topologies.base import PlanTopo, hand_over_to_lab_mode


class IcsTopo(PlanTopo):
    """HMI, engineering workstation, historian, attacker | two PLCs."""

    def __init__(self, **opts: object) -> None:
        super().__init__(ics_plan(), **opts)


class ClassicTopo(PlanTopo):
    """One switch and h1-h4, as in the classic ``h1 ping h2`` lab; h4 is a Modbus PLC."""

    def __init__(self, **opts: object) -> None:
        super().__init__(classic_plan(), **opts)


TOPOS = {"ics": IcsTopo, "classic": ClassicTopo}
topos = TOPOS  # the name `mn --custom` looks for


def main(argv: list[str] | None = None) -> int:
    """Lab mode on the ICS (``python -m lab``; an exec keeps topologies free of lab imports)."""
    return hand_over_to_lab_mode("ics", argv)


if __name__ == "__main__":
    raise SystemExit(main())
