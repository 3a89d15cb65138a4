"""``python -m experiments.plot BUNDLE_DIR``: redraw every plot of a bundle from its CSVs.

Needs no root and no network: only ``config.json`` (which experiment) and the CSVs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli import OneLineParser, run_main
from common.errors import UserError


def replot(bundle: Path) -> list[tuple[str, str]]:
    from experiments.registry import get_experiment

    cfg_path = bundle / "config.json"
    if not bundle.is_dir():
        raise UserError(f"{bundle} is not a directory")
    try:
        name = json.loads(cfg_path.read_text())["experiment"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"{bundle} is not a results bundle (no readable config.json)") from None
    exp = get_experiment(name)
    try:
        return exp.plot(bundle)
    except FileNotFoundError as exc:
        raise UserError(f"{bundle}: missing {Path(exc.filename).name}; nothing to plot"
                        ) from None


def _replot_all(args: argparse.Namespace) -> int:
    from reporting.report import write_report

    for b in args.bundle:
        for stem, _caption in replot(b):
            print(f"{b / stem}.png")
        if (b / "manifest.json").exists():
            print(write_report(b))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m experiments.plot", description=__doc__.splitlines()[0])
    p.add_argument("bundle", nargs="+", type=Path, help="results bundle folder(s)")
    return run_main(lambda: _replot_all(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
