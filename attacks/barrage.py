"""What the frame barrages share: their flags and ceilings, and the CLI of one against a PLC.

``modbus_fuzz`` and ``s7_fuzz`` are the same attack on different wire formats: a bounded
barrage against one PLC port. :class:`OnePortBarrage` is that attack's command line once
(``--port``, the :class:`BarrageLimits` flags, exactly one in-scope target, the outcome with
the barrage's figures, the closing log line); each module gives only its name, limits and the
function that sends. ``ctrl_fuzz`` (frames to the controller, no port) shares the flags.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from attacks.bounds import Bound, check_bounds
from common.cli import OneLineParser, int_in, positive_float
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, single_target

log = logging.getLogger(__name__)


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
        """The ceilings :func:`attacks.bounds.check_bounds` applies after parsing."""
        return (Bound("--rate-fps", at_most=self.max_rate_fps),
                Bound("--max-s", at_most=self.max_duration_s))


@dataclass(kw_only=True)
class BarrageOutcome(AttackOutcome):
    """The outcome of a barrage against one PLC port.

    barrage: the barrage's stats record as a dict (frames, kinds, connections...).
    """

    target: str = ""
    port: int = 0
    barrage: dict = field(default_factory=dict)


@dataclass
class BarrageCounts:
    """What every barrage counts, updated while it runs (an interrupted one keeps its counts).

    frames: frames written, by kind in ``kinds``.
    connections: TCP connections established; connect_failures: refused or timed out.
    reply_bytes: bytes the target sent back.
    """

    frames: int = 0
    connections: int = 0
    connect_failures: int = 0
    reply_bytes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def count(self, kind: str, n: int = 1) -> None:
        """``n`` more frames of ``kind``."""
        self.frames += n
        self.kinds[kind] = self.kinds.get(kind, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OnePortBarrage:
    """A barrage against one PLC port, as its command line runs it.

    attack: the name in the outcome and the log (``s7_fuzz``); port: the default ``--port``.
    new_stats: makes the empty stats record, filled while the barrage runs (so an
        interrupted run still reports its counts).
    send: sends the barrage: ``send(args, target, stats)``.
    add_options: adds the attack's own flags; outcome: its outcome class.
    """

    attack: str
    description: str
    port: int
    limits: BarrageLimits
    new_stats: Callable[[], BarrageCounts]
    send: Callable[[argparse.Namespace, str, Any], object]
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    outcome: type[BarrageOutcome] = BarrageOutcome

    def parser(self) -> OneLineParser:
        """The attack parser with ``--port``, the barrage flags and the attack's own."""
        parser = attack_parser(f"attacks.{self.attack}", self.description)
        parser.add_argument("--port", type=int_in(1, 65535), default=self.port)
        self.limits.add_options(parser)
        if self.add_options is not None:
            self.add_options(parser)
        return parser

    def _validate(self, args: argparse.Namespace) -> None:
        check_bounds(args, self.limits.bounds)
        single_target(args.plan, args.targets)

    def _new_outcome(self, args: argparse.Namespace,
                     targets: tuple[str, ...]) -> BarrageOutcome:
        return self.outcome(attack=self.attack, targets=list(targets), target=targets[0],
                            port=args.port)

    def _body(self, ctx: AttackContext) -> None:
        outcome = ctx.outcome
        assert isinstance(outcome, BarrageOutcome)
        stats = self.new_stats()
        try:
            self.send(ctx.args, outcome.target, stats)
        finally:
            outcome.barrage = stats.to_dict()
            log.info("%s: %d frames, %d connections in %.2f s to %s:%d", self.attack,
                     stats.frames, stats.connections, stats.duration_s, outcome.target,
                     ctx.args.port)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the barrage; the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
        return run_attack(parser=self.parser(), argv=argv, new_outcome=self._new_outcome,
                          body=self._body, validate=self._validate)
