"""The ``persistent`` attacker: scans and exploits continuously for a whole window.

    python -m attacks.attacker_persistent --plan PLAN.json --targets 10.0.0.0/24 \\
        --out OUT.json [--window-s 120] [--round-s 2] [--timeout-s 1] [--seed 0]

Round after round until ``--window-s`` has passed: the ``fast`` attacker's sweep (ARP to every
target, a Modbus read to each responder the moment it answers), then a pause so a round
starts every ``--round-s`` at most. More targets than one sweep's bound
(:data:`attacks.attacker_common.MAX_SWEEP_ADDRESSES`, e.g. a /16 pool) are swept a random
sample of that many per round, drawn afresh each round from ``--seed`` and the round number
(:func:`attacks.attacker_common.round_sample`): an attacker that cannot sweep the whole range
at once samples it, as OF-RHM's random scanners do. Each round is recorded (start, addresses
swept, responders, attempts the attacker believes answered); the experiment turns the
attempts and the PLCs' request logs into distinct PLCs found and reached over time (the OF-RHM
figure).

SIGUSR1 ends the window early (the experiment sends it once the PLCs' own logs show every PLC
reached): the round under way finishes, no new one starts, the outcome is written as for a
full window (not ``interrupted``: nothing was cut short) with ``stopped_early_unix_s`` (when
the signal arrived) in the last round's record and the exit status is 0. SIGTERM/SIGINT
still interrupt at once (:func:`common.hostenv.run_attack`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Sequence

from attacks.attacker_common import (
    AttackerOutcome,
    attacker_parser,
    local_interface,
    round_sample,
)
from attacks.attacker_fast import sweep_and_exploit
from attacks.bounds import Bound, check_bounds
from common.cli import positive_float
from common.hostenv import AttackContext, run_attack, utc_now_iso

log = logging.getLogger(__name__)

MAX_WINDOW_S = 3600.0
MIN_ROUND_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    p = attacker_parser("attacks.attacker_persistent",
                        "Sweep and exploit in rounds for a whole window.")
    p.add_argument("--window-s", type=positive_float, default=120.0,
                   help=f"how long to keep attacking (at most {MAX_WINDOW_S:g})")
    p.add_argument("--round-s", type=positive_float, default=2.0,
                   help=f"shortest time between round starts (at least {MIN_ROUND_S:g})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of each round's random sample when the targets exceed one "
                        "sweep's bound")
    return p


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, (Bound("--window-s", at_most=MAX_WINDOW_S),
                       Bound("--round-s", at_least=MIN_ROUND_S)))


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> AttackerOutcome:
    return AttackerOutcome(attack="attacker_persistent", model="persistent",
                           targets=list(targets), started_at=utc_now_iso())


class EarlyStop:
    """SIGUSR1 while installed: the window ends after the round under way (``requested``)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.at_unix_s: float | None = None

    def __call__(self, _signum: int, _frame: object) -> None:
        if self.at_unix_s is None:
            self.at_unix_s = time.time()
        self.requested.set()


def _body(ctx: AttackContext) -> None:
    # Installed for the rest of the process, never restored: SIGUSR1's default action kills,
    # and a stop sent as the window ends on its own must not cost the outcome.
    stop = EarlyStop()
    signal.signal(signal.SIGUSR1, stop)
    _rounds(ctx, stop)


def _rounds(ctx: AttackContext, stop: EarlyStop) -> None:
    out = ctx.outcome
    assert isinstance(out, AttackerOutcome)
    local = local_interface(ctx.plan)
    out.attack_start_unix_s = time.time()
    end_s = time.monotonic() + ctx.args.window_s
    sweep = 0
    while (time.monotonic() < end_s and not ctx.stop_requested
           and not stop.requested.is_set()):
        t0 = time.monotonic()
        started = time.time()
        before = len(out.replies)
        addresses = round_sample(ctx.targets, ctx.args.seed, sweep)
        attempts = sweep_and_exploit(ctx, local, addresses, "persistent", sweep)
        out.rounds.append({"sweep": sweep, "started_unix_s": started, "swept": len(addresses),
                           "responders": len(out.replies) - before,
                           "replied": sorted(a.address for a in attempts if a.replied)})
        sweep += 1
        rest_s = min(ctx.args.round_s - (time.monotonic() - t0), end_s - time.monotonic())
        if rest_s > 0:
            stop.requested.wait(rest_s)
    if stop.at_unix_s is not None and out.rounds:
        out.rounds[-1]["stopped_early_unix_s"] = stop.at_unix_s
        log.info("stopped early (SIGUSR1) after %d round(s)", sweep)


def main(argv: Sequence[str] | None = None) -> int:
    """0 done (whatever was reached; also after SIGUSR1), 2 refused, 128+N stopped by
    signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
