"""Command-line helpers every runnable module shares: the one-line parser, argparse types,
and polling for a condition instead of sleeping.

One place for each: a fix to how a bad ``--ports`` is reported, or to how a wait times out,
lands here once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from common.errors import UserError

T = TypeVar("T")
N = TypeVar("N", int, float)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UserError` (one line, exit 2) instead of
    printing the usage and exiting, so ``main`` decides how to report them."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def run_main(body: Callable[[], int]) -> int:
    """Run a CLI's body; a :class:`UserError` becomes one line on stderr (``error: ...``)
    and its exit code (2, or 3 for a missing prerequisite), never a traceback."""
    try:
        return body()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def number_in(kind: Callable[[str], N], low: float, high: float, unit: str = ""
              ) -> Callable[[str], N]:
    """argparse type factory: a ``kind`` (int or float) in ``low..high``, one-line errors.

    unit: appended to the range in the error (``" s"``: ``must be 10..3600 s, got '5'``).
    """

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be {_bound(low)}..{_bound(high)}{unit}, got {text!r}")
        return value

    return parse


def _bound(value: float) -> str:
    # ints as written (2**63 - 1 stays exact); floats short (1e+09, 0.001)
    return str(value) if isinstance(value, int) else f"{value:g}"


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse type factory: an integer in ``low..high`` (one-line error otherwise)."""
    return number_in(int, low, high)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def port_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated TCP ports (1-65535) and ``a-b`` port ranges, deduplicated."""
    ports: dict[int, None] = {}  # insertion-ordered set: linear for 1-65535
    for item in text.split(","):
        item = item.strip()
        try:
            if "-" in item:
                low_text, high_text = item.split("-", 1)
                low, high = int(low_text), int(high_text)
            else:
                low = high = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad port {item!r} in {text!r}") from None
        if not 1 <= low <= high <= 65535:
            raise argparse.ArgumentTypeError(f"port {item!r} outside 1-65535")
        ports.update(dict.fromkeys(range(low, high + 1)))
    return tuple(ports)


def choice_list(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """argparse type factory: a comma-separated subset of ``choices``, kept in ``choices`` order."""

    def parse(text: str) -> tuple[str, ...]:
        picked = [c.strip() for c in text.split(",")]
        unknown = [c for c in picked if c not in choices]
        if unknown or not picked:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown)) or 'empty'} (choose from "
                f"{','.join(choices)})")
        return tuple(c for c in choices if c in picked)

    return parse


def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.05,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Poll ``condition`` until it returns something truthy; that value, or None at timeout.

    The condition is always tried at least once, and once more at the deadline, so a
    zero timeout still looks.
    """
    deadline = clock() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        sleep(min(interval_s, remaining))
