"""Plain records of the ``rhm`` core (:mod:`controllers.rhm_core`): conversations, verdicts,
hop results, counters, and the hardening switches."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.counters import counter_record
from common.hopschedule import HopEvent
from common.plan import HostSpec
from controllers.flowspec import FlowDelete, FlowSpec


@dataclass(frozen=True)
class Hardening:
    """Which defense-hardening measures are on (all by default; docs/attacks-defenses.md).

    bind_ports: trust a trusted host's MAC/IP only on its own switch port
        (:mod:`controllers.port_trust`).
    syn_guard: at each hop, drop new TCP connections (SYN without ACK) to the retired address
        on every switch, above the conversations' flows: only connections established before
        the hop keep it; UDP keeps it only when seen both ways; ICMP not at all.
    icmp_rewrite: ICMP errors from protected hosts to untrusted peers go through the
        controller, which rewrites the quoted header's real address to the virtual one.
    retired_grace_s: an untrusted peer's conversation on a retired address is cut this long
        after the hop (None: it lives until idle, as OF-RHM does).
    """

    bind_ports: bool = True
    syn_guard: bool = True
    icmp_rewrite: bool = True
    retired_grace_s: float | None = None

    def __post_init__(self) -> None:
        if self.retired_grace_s is not None and self.retired_grace_s < 0:
            raise ValueError(f"retired_grace_s must be >= 0, got {self.retired_grace_s}")


NO_HARDENING = Hardening(bind_ports=False, syn_guard=False, icmp_rewrite=False)


@dataclass(frozen=True)
class FlowKey:
    """One conversation between a peer and a protected host's virtual address.

    peer_port / port: the peer's and the protected side's TCP/UDP ports (None without ports).
    """

    proto: int
    peer_ip: str
    peer_port: int | None
    virtual_ip: str
    port: int | None


RealKey = tuple[int, str, int | None, str, int | None]
"""A conversation by its real addresses: (protocol, peer IP, peer port, real IP, port)."""


@dataclass
class Mapping:
    """A conversation bound to the virtual address it started on.

    expires_s: controller-side expiry while no edge flow carries the mapping yet; None once
    edge flows are installed (then the switch's idle timeout decides, via flow-removed).
    live_edge_flows: directions (0 forward, 1 reverse) whose edge flow is installed.
    both_ways: the controller has seen the conversation's packets in both directions (a UDP
        conversation keeps a retired address only then). retired_s: when its address retired.
    created_side: 0 when the peer's packet started it, 1 when the protected host's did.
    """

    id: int
    key: FlowKey
    host: HostSpec
    peer_mac: str
    created_s: float
    expires_s: float | None
    live_edge_flows: set[int] = field(default_factory=set)
    both_ways: bool = False
    retired_s: float | None = None
    created_side: int = 0


@dataclass(frozen=True)
class ArpVerdict:
    """What to do with one ARP message: ``reply`` (with answer_mac), ``drop`` or ``forward``
    (ordinary L2 switching, never cached in a flow). reason: a word for logs and counters."""

    action: str
    reason: str
    answer_mac: str | None = None


@dataclass(frozen=True)
class HopResult:
    """A hop and the switch changes it needs. kept_flows: conversations still on the old
    address (they keep it until idle). decided_s: when the core decided (caller's clock)."""

    event: HopEvent
    deletes: tuple[FlowDelete, ...]
    flows: tuple[FlowSpec, ...]
    kept_flows: int
    decided_s: float


RhmStats = counter_record(
    "RhmStats",
    ("arp_replies", "arp_refused", "real_refused", "stale_refused", "mappings_created",
     "mappings_removed", "leak_refused", "spoof_refused", "stale_syn_refused",
     "icmp_quotes_rewritten", "retired_cut", "decoy_replies"),
    "Counters since the core was created.", __name__)
