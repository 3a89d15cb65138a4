"""``python -m experiments.plot BUNDLE_DIR``: redraw every plot of a bundle from its CSVs.

Needs no root and no network: only ``config.json`` (which experiment) and the CSVs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from common.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message)


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


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m experiments.plot", description=__doc__.splitlines()[0])
    p.add_argument("bundle", nargs="+", type=Path, help="results bundle folder(s)")
    try:
        args = p.parse_args(argv)
        from reporting.report import write_report

        for b in args.bundle:
            for stem, _caption in replot(b):
                print(f"{b / stem}.png")
            if (b / "manifest.json").exists():
                print(write_report(b))
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
