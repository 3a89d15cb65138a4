"""The classic single-switch lab as its own entry point.

    sudo .venv/bin/python -m topologies.classic --cli

One switch ``s1``, hosts h1-h4 at 10.0.0.1-4/24, the controller, and a Modbus/TCP PLC (the
water tank) on h4: ``h1 ping h2`` and ``h3 nmap -sP 10.0.0.0/24`` work as typed. The same
options as ``python -m topologies.ics`` (:mod:`lab.mode`), with ``--topo classic``
as the default. Also works with ``mn --custom topologies/classic.py --topo classic``.
"""

from __future__ import annotations

from topologies.base import hand_over_to_lab_mode
from topologies.ics import ClassicTopo

TOPOS = {"classic": ClassicTopo}
topos = TOPOS  # the name `mn --custom` looks for


def main(argv: list[str] | None = None) -> int:
    """Lab mode on the ``classic`` topology: hands over to ``python -m lab`` (:mod:`lab.mode`).

    An ``exec``, not an import: topologies import nothing above the neutral layer, so that
    ``mn --custom`` loads only the graph.
    """
    return hand_over_to_lab_mode("classic", argv)


if __name__ == "__main__":
    raise SystemExit(main())
