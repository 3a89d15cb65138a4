"""``python -m experiments.clean``: remove what crashed runs left behind, and only that.

Reads the run-state records (``/run/sdn-ics-lab/*.json``) that every lab writes before it
creates anything, and removes the processes (checked by pid *and* start time), OVS bridges and
interfaces they list. A record whose owner is still running belongs to a live run and is left
alone unless ``--force``. Never kills by name, never touches what no record lists.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from common.cli import OneLineParser, run_main
from common.errors import UserError
from lab.runstate import STATE_DIR, all_states
from lab.teardown import remove_recorded


def _clean(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if os.geteuid() != 0 and not args.dry_run:
        raise UserError("cleaning needs root; run: sudo python -m experiments.clean")
    states = all_states()
    if not states:
        print(f"nothing to clean (no run-state records in {STATE_DIR})")
        return 0
    total = 0
    for st in states:
        if st.owner_alive() and not args.force:
            print(f"{st.run_id}: owner pid {st.owner_pid} is still running; left alone "
                  "(use --force to clean it anyway)")
            continue
        if args.dry_run:
            print(f"{st.run_id}: would remove {len(st.processes)} process(es), "
                  f"bridges {st.bridges}, {len(st.interfaces)} interface(s)"
                  + "".join(f"; on {s.name}: bridges {s.bridges}, {len(s.netns)} host "
                            f"namespace(s), {len(s.interfaces)} interface(s)"
                            for s in st.servers))
            continue
        removed = remove_recorded(st)
        total += removed.total()
        print(f"{st.run_id}: removed {removed.describe()}")
        if removed.unreachable:  # a cluster server did not answer: keep the record for later
            print(f"{st.run_id}: record kept; run again once the server(s) answer over ssh")
            continue
        st.remove()
    if not args.dry_run:
        print(f"removed {total} item(s) in all")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m experiments.clean", description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true",
                   help="also clean records whose owning run is still alive")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    return run_main(lambda: _clean(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
