"""Decoy responders of the ``rhm`` core: pool addresses that answer like hosts but are not PLCs.

With ``--decoys N`` the controller answers ARP (with a host-like virtual MAC,
:func:`common.hopschedule.virtual_mac`) and ICMP echo for N addresses of the virtual pool, so
a sweep of the pool finds N + (protected hosts) responders and cannot tell which are PLCs
from ARP or ping alone. Anything else sent to a decoy (TCP, UDP, ...) is dropped, as for an
unassigned pool address: a decoy is found by a sweep, and costs the attacker a Modbus attempt
that never reaches a PLC.

The set is drawn from the pool with its own ``random.Random`` (seeded from the schedule's
seed, so the hop schedule is the same with and without decoys), re-drawn at every hop, and
never holds a live address: a protected host's current virtual address or one a
conversation still uses. The core answers for an owner first, so an address the schedule
hands to a host between two draws is never answered as a decoy.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from controllers.flowspec import NO_BUFFER, PORT_CONTROLLER, Decision, FlowDelete, Output, PacketOut
from controllers.packets import icmp_echo_reply_frame

MAX_DECOYS = 1024  # bound on the controller's answering work per sweep


class DecoyError(ValueError):
    """A decoy count the pool cannot hold; ``str()`` is one line."""


def check_decoys(count: int, pool_size: int, protected: int) -> None:
    """DecoyError unless ``count`` decoys fit in the pool beside the protected hosts' current
    addresses (and one spare for the next hop)."""
    if not 0 <= count <= MAX_DECOYS:
        raise DecoyError(f"decoys must be 0..{MAX_DECOYS}, got {count}")
    if count and count > pool_size - protected - 1:
        raise DecoyError(f"{count} decoys do not fit a virtual pool of {pool_size} address(es) "
                         f"with {protected} protected host(s): at most "
                         f"{max(0, pool_size - protected - 1)}")


class DecoySet:
    """The current decoy addresses (see module doc). pool: the schedule's (sorted) pool."""

    def __init__(self, pool: Sequence[str], count: int, seed: int) -> None:
        self.pool = tuple(pool)
        self.count = count
        self._rng = random.Random(f"decoys:{seed}")
        self.current: frozenset[str] = frozenset()
        self.draws = 0

    def redraw(self, live: Collection[str]) -> frozenset[str]:
        """A new set of ``count`` decoys, none in ``live`` (fewer when the pool runs short)."""
        if not self.count:
            return self.current
        free = [a for a in self.pool if a not in live]
        self.current = frozenset(self._rng.sample(free, min(self.count, len(free))))
        self.draws += 1
        return self.current

    def __contains__(self, address: object) -> bool:
        return address in self.current


def decoy_answer(dpid: int, in_port: int, frame: bytes, decoy_mac: str,
                 deletes: tuple[FlowDelete, ...] = ()) -> Decision:
    """What a decoy does with an IPv4 ``frame`` sent to it: an ICMP echo request gets its
    reply (from ``decoy_mac``, sent back out of ``in_port`` by the controller, no flow);
    anything else is dropped."""
    try:
        reply = icmp_echo_reply_frame(frame, decoy_mac)
    except ValueError:
        return Decision(reason="decoy_dropped", deletes=deletes)
    out = PacketOut(dpid, PORT_CONTROLLER, (Output(in_port),), reply, NO_BUFFER)
    return Decision(reason="decoy_echo", deletes=deletes, packet_out=out)
