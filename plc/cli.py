"""What the PLC's and the HMI's command lines share: a bounded-number argparse type, the
one-line report of a usage error, and their logging set-up.

(The one-line parser itself is :class:`common.cli.OneLineParser`.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from common.errors import UserError

N = TypeVar("N", int, float)


def number_in(kind: Callable[[str], N], low: float, high: float) -> Callable[[str], N]:
    """argparse type factory: a ``kind`` (int or float) in ``low..high``, one-line errors."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} outside {low:g}..{high:g}")
        return value

    return parse


def report_usage_error(prog: str, exc: UserError) -> int:
    """Print ``PROG: error: MESSAGE`` as one stderr line; the exit status (2)."""
    sys.stderr.write(f"{prog}: error: {exc}\n")
    return exc.exit_code


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; pymodbus's own errors are ours to report, so it is muted."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
