"""The ``fast`` attacker: exploit on first reply.

    python -m attacks.attacker_fast --plan PLAN.json --targets 10.0.0.0/24 --out OUT.json \\
        [--timeout-s 1] [--sweep-wait-s 1]

One ARP sweep of every target address (the whole subnet, the defense's virtual pool
included); the moment an address answers, a Modbus connect and one read (function 4,
register 0) go to it, from a worker thread, while the sweep goes on. The outcome lists every
reply and every attempt with its source port and the time of the reply that triggered it, so
the experiment can report the time from first reply to exploit and find each attempt in the
PLCs' request logs.

What it cannot do: find hosts that do not answer ARP (on this flat subnet every live address
does, the defenses' virtual ones included).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial

from attacks.attacker_common import (
    AttackerOutcome,
    Attempt,
    Local,
    Reply,
    attacker_parser,
    local_interface,
    modbus_attempt,
    sweep_dispatch,
)
from common.hostenv import AttackContext, run_attack, utc_now_iso


def sweep_and_exploit(ctx: AttackContext, local: Local, addresses: Sequence[str], tactic: str,
                      sweep: int = 0, want: Callable[[Reply], bool] | None = None
                      ) -> list[Attempt]:
    """ARP-sweep ``addresses``; attack every responder ``want`` accepts as soon as it answers.

    Replies go into the outcome's ``replies``, attempts into its ``attempts``; returns the
    attempts of this sweep.
    """
    out = ctx.outcome
    assert isinstance(out, AttackerOutcome)
    timeout_s = ctx.args.timeout_s

    def task(reply: Reply) -> Callable[[], Attempt] | None:
        out.replies.append(reply.to_dict(sweep))
        if want is None or want(reply):
            return partial(modbus_attempt, tactic, reply.address, timeout_s,
                           reply_unix_s=reply.t_unix_s)
        return None

    _replies, attempts = sweep_dispatch(ctx.plan, local, addresses, ctx.args.sweep_wait_s, task)
    out.attempts.extend(a.to_dict() for a in attempts)
    return attempts


def build_parser() -> argparse.ArgumentParser:
    return attacker_parser("attacks.attacker_fast",
                           "ARP sweep; Modbus read to every responder the moment it answers.")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> AttackerOutcome:
    return AttackerOutcome(attack="attacker_fast", model="fast", targets=list(targets),
                           started_at=utc_now_iso())


def _body(ctx: AttackContext) -> None:
    out = ctx.outcome
    assert isinstance(out, AttackerOutcome)
    out.attack_start_unix_s = time.time()
    sweep_and_exploit(ctx, local_interface(ctx.plan), ctx.targets, "fast")


def main(argv: Sequence[str] | None = None) -> int:
    """0 done (whatever was reached), 2 refused, 128+N stopped by signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body)


if __name__ == "__main__":
    raise SystemExit(main())
