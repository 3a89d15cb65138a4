"""What the PLC's and the HMI's command lines share: a bounded-number argparse type.

(The one-line parser itself is :class:`common.cli.OneLineParser`.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

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
