"""Parsers of tool output (pure functions, tested on captured text)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_REPLY = re.compile(r"icmp_seq=(\d+)\s+ttl=\d+\s+time[=<]([\d.]+)\s*ms")
_TX = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_LOSS = re.compile(r"([\d.]+)% packet loss")
_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max/(?:mdev|stddev) = "
                  r"([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


@dataclass(frozen=True)
class PingResult:
    """One ``ping -c N`` run.

    rtts_ms: (icmp_seq, rtt_ms) for every reply, in arrival order (duplicates kept out).
    rtt_*_ms: ping's own summary; None when nothing came back.
    """

    transmitted: int
    received: int
    loss_pct: float
    rtts_ms: tuple[tuple[int, float], ...] = field(default=())
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_mdev_ms: float | None = None


class ParseError(ValueError):
    """Tool output did not have the expected shape."""


def parse_ping(text: str) -> PingResult:
    """Parse iputils/BusyBox ``ping`` output; raises ParseError when there is no summary."""
    tx = _TX.search(text)
    if tx is None:
        first = text.strip().splitlines()[:1]
        raise ParseError(f"no ping statistics in output: {first[0] if first else '(empty)'}")
    transmitted, received = int(tx.group(1)), int(tx.group(2))
    loss = _LOSS.search(text)
    loss_pct = float(loss.group(1)) if loss else (
        100.0 * (transmitted - received) / transmitted if transmitted else 100.0)
    seen: set[int] = set()
    rtts: list[tuple[int, float]] = []
    for line in text.splitlines():
        m = _REPLY.search(line)
        if m and "DUP!" not in line:
            seq = int(m.group(1))
            if seq not in seen:
                seen.add(seq)
                rtts.append((seq, float(m.group(2))))
    rtt = _RTT.search(text)
    if rtt:
        mn, avg, mx, mdev = (float(g) for g in rtt.groups())
        return PingResult(transmitted, received, loss_pct, tuple(rtts), mn, avg, mx, mdev)
    return PingResult(transmitted, received, loss_pct, tuple(rtts))
