"""``python -m experiments.dashboard BUNDLE [--speed 1..20]``: replay a finished bundle's
timeline in the dashboard page, without root (:mod:`dashboard.cli`, docs/dashboard.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dashboard.cli import main as dashboard_main


def main(argv: Sequence[str] | None = None) -> int:
    return dashboard_main(argv, prog="python -m experiments.dashboard", replay_only=True)


if __name__ == "__main__":
    sys.exit(main())
