"""Attacker IP hopping: probe from a source address that changes on a seeded schedule.

Run inside the attacker host::

    python -m attacks.iphop --plan PLAN.json --targets 10.0.0.21,10.0.0.22 --out hop.json \\
        [--ports 502,80] [--pool 10.0.0.200/29 | --pool-size 8] [--hop-interval-s 2] \\
        [--seed 1] [--duration-s 20] [--probe-interval-s 0.2] [--max-probes 1000] \\
        [--connect-timeout-s 1]

The address change is simulated with iptables NAT in the attacker's namespace: at each hop
the next pool address is added to the interface as a /32 (so the kernel answers ARP for it
and the replies come back) and one ``SNAT --to-source`` rule in ``nat/POSTROUTING`` rewrites
every new connection from the attacker's real address to it. The probes are plain kernel
TCP connects (scapy's raw frames would bypass netfilter, hence the NAT), one at a time, to
every (target, port) pair in turn, paced by ``--probe-interval-s``; each probe records the
source address it left with, the result (open/closed/filtered) and its latency.

The schedule is a pure function of (pool, seed, interval, duration): the same seed gives the
same sequence of addresses on every machine and Python version (SHA-256 based, not
``random``). The pool comes from the plan's subnet: addresses no host uses and, unless
``--allow-virtual-pool``, outside the defenders' virtual pool.

Everything the run changes on the host (addresses, SNAT rules, the nat table itself) is
undone on exit, SIGTERM/SIGINT included, and checked against a snapshot taken first.

What it cannot do: change the MAC address (a defender correlating by MAC still links the
sources), hop in the middle of one TCP connection (NAT is fixed per connection), undo the
targets' ARP entries for the pool addresses, or remove the attacker's conntrack entries
(they expire).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import logging
import math
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from attacks.bounds import Bound, check_bounds
from common.cli import int_in, port_list, positive_float
from common.errors import UserError
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, utc_now_iso
from common.modbus import MODBUS_PORT
from common.netstate import HostChanges, local_interface
from common.plan import AddressPlan
from common.scope import ScopeError, expand_targets

log = logging.getLogger(__name__)

DEFAULT_PORTS = (MODBUS_PORT,)
DEFAULT_POOL_SIZE = 8
DEFAULT_HOP_INTERVAL_S = 2.0
DEFAULT_DURATION_S = 20.0
DEFAULT_PROBE_INTERVAL_S = 0.2
DEFAULT_MAX_PROBES = 1000
DEFAULT_CONNECT_TIMEOUT_S = 1.0
MAX_DURATION_S = 3600.0
MAX_PROBES = 100000
MIN_PROBE_INTERVAL_S = 0.01
MIN_HOP_INTERVAL_S = 0.1
MAX_CONNECT_TIMEOUT_S = 30.0


# --- pure: pool and schedule ------------------------------------------------------------
@dataclass(frozen=True)
class Hop:
    """One step of the schedule: from ``start_s`` (seconds after the start) use ``address``."""

    index: int
    start_s: float
    address: str


def free_addresses(plan: AddressPlan, allow_virtual_pool: bool = False) -> tuple[str, ...]:
    """Host addresses of the plan's subnet that no host uses, in address order.

    allow_virtual_pool: include the defenders' virtual pool (excluded by default: a hopping
        attacker there would collide with a moving-target defense's addresses).
    """
    used = {h.ip for h in plan.hosts}
    if not allow_virtual_pool:
        used |= set(plan.virtual_pool)
    return tuple(str(a) for a in plan.network.hosts() if str(a) not in used)


def default_pool(plan: AddressPlan, size: int, allow_virtual_pool: bool = False
                 ) -> tuple[str, ...]:
    """The pool taken from the plan: the ``size`` highest free addresses, ascending.

    The top of the subnet is used because the plan hands out low addresses to hosts and the
    virtual pool sits in the middle (``ics``: hosts .11-.66, pool .100-.199, so .247-.254).
    Raises UserError when fewer than two addresses are free.
    """
    free = free_addresses(plan, allow_virtual_pool)
    if len(free) < 2:
        hint = "" if allow_virtual_pool else " (outside the virtual pool; try " \
                                              "--allow-virtual-pool)"
        raise UserError(f"the plan's subnet {plan.subnet} has fewer than 2 free "
                         f"addresses{hint}")
    return free[-size:] if size < len(free) else free


def check_pool(plan: AddressPlan, pool_text: str, allow_virtual_pool: bool = False
               ) -> tuple[str, ...]:
    """Expand ``--pool`` (addresses/CIDRs) through the scope guard; refuse used addresses.

    Raises ScopeError for an address outside the plan, UserError for a host's real address,
    a virtual-pool address (unless allowed) or fewer than two addresses.
    """
    pool = expand_targets(plan, pool_text)
    virtual = set(plan.virtual_pool)
    for address in pool:
        owner = plan.by_ip(address)
        if owner is not None:
            raise UserError(f"--pool: {address} is {owner.name}'s address")
        if address in virtual and not allow_virtual_pool:
            raise UserError(f"--pool: {address} is in the defenders' virtual pool "
                             "(--allow-virtual-pool to use it anyway)")
    if len(pool) < 2:
        raise UserError("--pool: at least 2 addresses are needed to hop")
    return pool


def _draw(seed: int, index: int, modulo: int) -> int:
    """A deterministic draw in 0..modulo-1 from (seed, index), the same on every platform."""
    digest = hashlib.sha256(f"iphop:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % modulo


def hop_schedule(pool: Sequence[str], seed: int, hop_interval_s: float, duration_s: float
                 ) -> tuple[Hop, ...]:
    """The seeded hop sequence covering ``duration_s``: hop i starts at i * hop_interval_s.

    Consecutive hops never repeat an address (with two or more in the pool); the same
    (pool, seed, interval, duration) always gives the same tuple.
    """
    if not pool:
        raise ValueError("empty pool")
    if not hop_interval_s > 0 or not duration_s > 0:
        raise ValueError("hop_interval_s and duration_s must be > 0")
    n_hops = max(1, math.ceil(duration_s / hop_interval_s - 1e-9))
    hops: list[Hop] = []
    previous: str | None = None
    for i in range(n_hops):
        choices = [a for a in pool if a != previous] or list(pool)
        address = choices[_draw(seed, i, len(choices))]
        hops.append(Hop(index=i, start_s=float(round(i * hop_interval_s, 9)), address=address))
        previous = address
    return tuple(hops)


def hop_at(schedule: Sequence[Hop], t_s: float) -> Hop:
    """The hop in force ``t_s`` seconds after the start (the last one after the schedule)."""
    starts = [h.start_s for h in schedule]
    return schedule[max(0, bisect.bisect_right(starts, t_s) - 1)]


def probe_pairs(targets: Sequence[str], ports: Sequence[int]) -> list[tuple[str, int]]:
    """Every (target, port) pair, targets outer: the order the probe loop cycles through."""
    return [(t, p) for t in targets for p in ports]


def snat_rule(ifname: str, real_ip: str, subnet: str, address: str) -> list[str]:
    """The nat/POSTROUTING rule that makes connections from ``real_ip`` leave as ``address``."""
    return ["-o", ifname, "-s", f"{real_ip}/32", "-d", subnet, "-p", "all", "-j", "SNAT",
            "--to-source", address]


# --- outcome ----------------------------------------------------------------------------
@dataclass
class ProbeRecord:
    """One probe: when (seconds from the start), from which source, to what, and the result.

    state: ``open`` (connected), ``closed`` (refused) or ``filtered`` (no answer in time).
    """

    t_s: float
    hop: int
    source: str
    target: str
    port: int
    state: str
    latency_ms: float


@dataclass(kw_only=True)
class IpHopOutcome(AttackOutcome):
    """The iphop outcome: :class:`AttackOutcome` plus pool, schedule, hops, probes, clean-up.

    schedule: the planned hops ({index, start_s, address}); hops_applied: those actually put
        in force, with ``applied_s`` (seconds from the start).
    sources_used: distinct source addresses that probes left with, in order of first use.
    host_restored: the host's iptables rules, addresses and sysctls are as before the run;
        host_differences lists what is not.
    """

    real_address: str = ""
    interface: str = ""
    pool: list[str] = field(default_factory=list)
    seed: int = 0
    hop_interval_s: float = 0.0
    schedule: list[dict[str, Any]] = field(default_factory=list)
    hops_applied: list[dict[str, Any]] = field(default_factory=list)
    probes: list[ProbeRecord] = field(default_factory=list)
    probe_count: int = 0
    states: dict[str, int] = field(default_factory=dict)
    sources_used: list[str] = field(default_factory=list)
    host_changes: list[str] = field(default_factory=list)
    host_restored: bool | None = None
    host_differences: list[str] = field(default_factory=list)


# --- I/O --------------------------------------------------------------------------------
def connect_probe(address: str, port: int, timeout_s: float) -> str:
    """A full TCP connect through the kernel (so NAT applies): open, closed or filtered."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return "open"
    except ConnectionRefusedError:
        return "closed"
    except OSError:
        return "filtered"


class Hopper:
    """Puts schedule hops in force: the pool address on the interface, one SNAT rule."""

    def __init__(self, changes: HostChanges, ifname: str, real_ip: str, subnet: str) -> None:
        self.changes = changes
        self.ifname = ifname
        self.real_ip = real_ip
        self.subnet = subnet
        self.current: Hop | None = None

    def apply(self, hop: Hop) -> None:
        """Switch to ``hop``: add its address (once), insert its SNAT rule, drop the old rule.

        The new rule goes in before the old one is deleted, so no connection can leave with
        the real address in between. Addresses stay until the end of the run: a reply to a
        connection made under an earlier hop still finds its address.
        """
        cidr = f"{hop.address}/32"
        if not self.changes.has_address(self.ifname, cidr):
            self.changes.add_address(self.ifname, cidr)
        new_rule = snat_rule(self.ifname, self.real_ip, self.subnet, hop.address)
        if self.current is not None and self.current.address == hop.address:
            self.current = hop
            return
        self.changes.iptables_insert("nat", "POSTROUTING", new_rule)
        if self.current is not None:
            self.changes.iptables_delete("nat", "POSTROUTING", snat_rule(
                self.ifname, self.real_ip, self.subnet, self.current.address))
        self.current = hop


def _run_probes(ctx: AttackContext, outcome: IpHopOutcome, hopper: Hopper,
                schedule: Sequence[Hop], pairs: Sequence[tuple[str, int]]) -> None:
    args = ctx.args
    allowed = set(ctx.targets)
    next_probe_s = 0.0
    i = 0
    states: Counter[str] = Counter()
    while outcome.probe_count < args.max_probes:
        now_s = ctx.elapsed_s()
        if now_s >= args.duration_s:
            break
        if now_s < next_probe_s:
            time.sleep(min(next_probe_s - now_s, args.duration_s - now_s))
            continue
        hop = hop_at(schedule, now_s)
        if hopper.current is None or hop.index != hopper.current.index:
            hopper.apply(hop)
            outcome.hops_applied.append({**asdict(hop), "applied_s": round(now_s, 6)})
            log.info("hop %d: source %s", hop.index, hop.address)
        target, port = pairs[i % len(pairs)]
        if target not in allowed:  # re-check right before sending
            raise ScopeError(f"refusing to probe {target}: not in the expanded targets")
        timeout_s = min(args.connect_timeout_s, max(0.05, args.duration_s - now_s))
        start = time.perf_counter()
        state = connect_probe(target, port, timeout_s)
        latency_ms = (time.perf_counter() - start) * 1000.0
        outcome.probes.append(ProbeRecord(round(now_s, 6), hop.index, hop.address, target,
                                          port, state, round(latency_ms, 3)))
        outcome.probe_count += 1
        states[state] += 1
        outcome.states = dict(states)
        if hop.address not in outcome.sources_used:
            outcome.sources_used.append(hop.address)
        i += 1
        next_probe_s = now_s + args.probe_interval_s


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, IpHopOutcome)
    local = local_interface(ctx.plan.network)
    ifname, real_ip = local.name, local.ip
    outcome.interface, outcome.real_address = ifname, real_ip
    pool = list(args.pool_addresses)
    if real_ip in pool:
        raise UserError(f"--pool: {real_ip} is this host's own address")
    targets = [t for t in ctx.targets if t != real_ip and t not in pool]
    if not targets:
        raise UserError("no target left once the attacker's own addresses are removed")
    schedule = hop_schedule(pool, args.seed, args.hop_interval_s, args.duration_s)
    outcome.schedule = [asdict(h) for h in schedule]
    pairs = probe_pairs(targets, args.ports)
    changes = HostChanges()
    try:
        hopper = Hopper(changes, ifname, real_ip, ctx.plan.subnet)
        _run_probes(ctx, outcome, hopper, schedule, pairs)
    finally:
        outcome.host_changes = changes.descriptions
        differences = changes.restore()
        outcome.host_restored = changes.restored
        outcome.host_differences = differences + changes.errors
        log.info("iphop: %d probe(s) from %d source(s); host restored: %s",
                 outcome.probe_count, len(outcome.sources_used), outcome.host_restored)
    if outcome.host_differences:
        raise RuntimeError("the host's network state differs from before the run: "
                           + "; ".join(outcome.host_differences))


# --- CLI --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The iphop command line (see the module docstring)."""
    parser = attack_parser("attacks.iphop",
                           "Probe targets from a source address hopping through a pool.")
    parser.add_argument("--ports", type=port_list, default=DEFAULT_PORTS,
                        help="TCP ports to probe (default 502)")
    parser.add_argument("--pool", default=None,
                        help="source addresses/CIDRs to hop through (default: the "
                             "--pool-size highest free addresses of the plan's subnet)")
    parser.add_argument("--pool-size", type=int_in(2, 254), default=DEFAULT_POOL_SIZE)
    parser.add_argument("--allow-virtual-pool", action="store_true",
                        help="let the pool use the defenders' virtual addresses")
    parser.add_argument("--hop-interval-s", type=positive_float,
                        default=DEFAULT_HOP_INTERVAL_S)
    parser.add_argument("--seed", type=int_in(0, 2**63 - 1), default=1)
    parser.add_argument("--duration-s", type=positive_float, default=DEFAULT_DURATION_S,
                        help=f"how long to probe (at most {MAX_DURATION_S:g})")
    parser.add_argument("--probe-interval-s", type=positive_float,
                        default=DEFAULT_PROBE_INTERVAL_S,
                        help=f"pause between probe starts (at least {MIN_PROBE_INTERVAL_S:g})")
    parser.add_argument("--max-probes", type=int_in(1, MAX_PROBES), default=DEFAULT_MAX_PROBES)
    parser.add_argument("--connect-timeout-s", type=positive_float,
                        default=DEFAULT_CONNECT_TIMEOUT_S)
    return parser


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, (Bound("--duration-s", at_most=MAX_DURATION_S),
                       Bound("--probe-interval-s", at_least=MIN_PROBE_INTERVAL_S),
                       Bound("--hop-interval-s", at_least=MIN_HOP_INTERVAL_S),
                       Bound("--connect-timeout-s", at_most=MAX_CONNECT_TIMEOUT_S)))
    plan = AddressPlan.load(args.plan)  # run_attack has read it once already: it is valid
    if args.pool is not None:
        try:
            args.pool_addresses = check_pool(plan, args.pool, args.allow_virtual_pool)
        except ScopeError as exc:
            raise UserError(f"--pool: {exc}") from None
    else:
        args.pool_addresses = default_pool(plan, args.pool_size, args.allow_virtual_pool)


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> IpHopOutcome:
    return IpHopOutcome(attack="iphop", parameters={}, targets=list(targets),
                        started_at=utc_now_iso(), pool=list(args.pool_addresses),
                        seed=args.seed, hop_interval_s=args.hop_interval_s)


def main(argv: Sequence[str] | None = None) -> int:
    """Run iphop; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
