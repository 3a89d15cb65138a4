"""The hard bounds on attack flags, checked in one place, and the options of a frame barrage.

An attack stays a bounded test whatever its flags say: each one declares its limits as data
(:class:`Bound`: ``--duration-s`` at most 300, ``--round-s`` at least 0.5...) and its
``validate`` hands them to :func:`check_bounds`, which refuses the first flag outside them
with one line (``--max-s 900: at most 300``; :func:`common.hostenv.run_attack` turns it into
exit status 2 before anything is sent). The barrages (``modbus_fuzz``, ``s7_fuzz``,
``ctrl_fuzz``) share their flags too: :class:`BarrageLimits` adds ``--frames``,
``--rate-fps``, ``--max-s`` and ``--seed`` with each attack's defaults and ceilings.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from dataclasses import dataclass

from common.cli import int_in, positive_float
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


@dataclass(frozen=True)
class BarrageLimits:
    """One barrage's defaults and hard ceilings.

    frames, max_frames: ``--frames`` default and ceiling (whole frames, at least 1).
    rate_fps, max_rate_fps: ``--rate-fps`` default and ceiling (None: only paced, no ceiling).
    max_s, max_duration_s: ``--max-s`` default and ceiling.
    """

    frames: int
    max_frames: int
    rate_fps: float
    max_rate_fps: float | None
    max_s: float
    max_duration_s: float

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--frames``, ``--rate-fps``, ``--max-s`` and ``--seed`` to ``parser``."""
        parser.add_argument("--frames", type=int_in(1, self.max_frames), default=self.frames,
                            help=f"frames to send (at most {self.max_frames})")
        rate_help = ("frames per second (pacing)" if self.max_rate_fps is None
                     else f"frames per second (at most {self.max_rate_fps:g})")
        parser.add_argument("--rate-fps", type=positive_float, default=self.rate_fps,
                            help=rate_help)
        parser.add_argument("--max-s", type=positive_float, default=self.max_s,
                            help=f"time bound in seconds (at most {self.max_duration_s:g})")
        parser.add_argument("--seed", type=int, default=1)

    @property
    def bounds(self) -> tuple[Bound, ...]:
        """The ceilings :func:`check_bounds` applies after parsing."""
        return (Bound("--rate-fps", at_most=self.max_rate_fps),
                Bound("--max-s", at_most=self.max_duration_s))
