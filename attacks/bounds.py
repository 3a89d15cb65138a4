"""The hard bounds on attack flags, checked in one place.

An attack stays a bounded test whatever its flags say: each one declares its limits as data
(:class:`Bound`: ``--duration-s`` at most 300, ``--round-s`` at least 0.5...) and its
``validate`` hands them to :func:`check_bounds`, which refuses the first flag outside them
with one line (``--max-s 900: at most 300``; :func:`common.hostenv.run_attack` turns it into
exit status 2 before anything is sent). The barrages' shared limits: :mod:`attacks.barrage`.

These are one-sided limits on numbers the parser has already taken as finite and positive
(:func:`common.cli.positive_float`); a flag with a natural range on both sides (a port, a
count) is checked while parsing, by :func:`common.cli.number_in` / ``int_in``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from dataclasses import dataclass

from common.errors import UserError


@dataclass(frozen=True)
class Bound:
    """flag: the option as typed (``--max-s``); at_most, at_least: inclusive limits (None:
    no limit on that side)."""

    flag: str
    at_most: float | None = None
    at_least: float | None = None

    @property
    def dest(self) -> str:
        """The attribute argparse stores the flag in (``max_s``)."""
        return self.flag.lstrip("-").replace("-", "_")


def check_bounds(args: argparse.Namespace, bounds: Iterable[Bound]) -> None:
    """Raise UserError naming the first flag of ``bounds`` whose value is outside them
    (NaN included); a flag left at None is not checked."""
    for bound in bounds:
        value = getattr(args, bound.dest)
        if value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            raise UserError(f"{bound.flag} {value}: not a number")
        if bound.at_most is not None and value > bound.at_most:
            raise UserError(f"{bound.flag} {value:g}: at most {bound.at_most:g}")
        if bound.at_least is not None and value < bound.at_least:
            raise UserError(f"{bound.flag} {value:g}: at least {bound.at_least:g}")
