"""The classic single-switch lab as its own entry point.

    sudo .venv/bin/python -m topologies.classic --cli

One switch ``s1``, hosts h1-h4 at 10.0.0.1-4/24, the controller, and a Modbus/TCP PLC (the
water tank) on h4: ``h1 ping h2`` and ``h3 nmap -sP 10.0.0.0/24`` work as typed. The same
options as ``python -m topologies.ics`` (:mod:`lab.mode`), with ``--topo classic``
as the default. Also works with ``mn --custom topologies/classic.py --topo classic``.
"""

from __future__ import annotations

from functools import partial

from topologies.base import hand_over_to_lab_mode
from topologies.ics import ClassicTopo

TOPOS = {"classic": ClassicTopo}
topos = TOPOS  # the name `mn --custom` looks for


# Lab mode on the classic topology: main(argv=None) -> exit status, as in topologies.ics.
main = partial(hand_over_to_lab_mode, "classic")

if __name__ == "__main__":
    raise SystemExit(main())
