"""``python -m lab``: lab mode, the emulated ICS at the ``mininet>`` prompt (:mod:`lab.mode`).

``python -m topologies.ics`` and ``python -m topologies.classic`` hand over here with
``--entry-point TOPO`` first, so their ``--help`` and errors keep their own names.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lab.mode import main as lab_main

ENTRY_POINTS = ("ics", "classic")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 2 and args[0] == "--entry-point" and args[1] in ENTRY_POINTS:
        topo = args[1]
        return lab_main(args[2:], prog=f"python -m topologies.{topo}", default_topo=topo)
    return lab_main(args, prog="python -m lab", default_topo="ics")


if __name__ == "__main__":
    raise SystemExit(main())
