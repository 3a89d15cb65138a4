"""Pure core of the ``rhm`` app (:mod:`controllers.rhm`): random host mutation, OF-RHM style.

No I/O, no OpenFlow framework; options in :mod:`controllers.rhm_options`.

Each protected host of the plan keeps its real address; the controller hands it a virtual
address from the plan's ``virtual_pool`` and changes it every hop interval. The core takes the
time (``now_s``) and a seed, and answers with plain data (flow specs, packet-outs, hop events).

What each kind of host sees:

- **Trusted** hosts (the plan's ``authorized`` hosts: HMI, EWS, historian; and the protected
  hosts among themselves) use the real addresses, unchanged. Trust is the plan's (IP, MAC)
  pair, so a host claiming a trusted IP with its own MAC is not trusted.
- **Everyone else** only ever sees virtual addresses. The controller answers ARP for current
  virtual addresses, never answers or forwards ARP for a real protected address to them, drops
  their IPv4 packets to real protected addresses (a drop flow per source/destination pair), and
  rewrites virtual <-> real addresses at the protected host's edge switch (``set_field``
  ``ipv4_dst``/``eth_dst`` toward the host, ``ipv4_src``/``eth_src`` back).
- Protected hosts' own ARP requests are answered by the controller from the plan (proxy ARP),
  never broadcast: a broadcast "who has X tell <real address>" would tell every host the real
  address.

**ARP and MAC design**: the ARP answer for a virtual address carries a *virtual MAC* derived
from the virtual IP (``06:00:<4 IP bytes>``: locally administered, unicast), so an observer
cannot link the virtual addresses of one host across hops by their MAC; the edge rewrite swaps
it for the real MAC. ``arp_mac="real"`` answers with the protected host's real MAC instead
(one less rewrite, but a MAC that is stable across hops).

**Per-flow mappings**: each conversation (protocol, peer IP and port, virtual IP, port) is bound
to the virtual address it started on. The edge flows of a mapping (forward rewrite and reverse
rewrite) carry ``send_flow_removed``; the mapping lives until they idle out, so a hop never breaks
an established flow, while a *new* flow to an old virtual address is dropped: at each hop, a drop
flow for the old address (below the mapping flows' priority) is installed on every switch for the
address's quarantine time, during which the schedule does not hand that address out again.

**Schedule determinism**: all random choices come from one ``random.Random(seed)`` consumed in
schedule order (scheduled time, then host order), not in call order, so the same seed gives
the same sequence of (time, host, virtual address) however often :meth:`RhmCore.tick` is called.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from common.hopschedule import HopEvent, HopSchedule, MutationConfig, virtual_mac
from common.plan import AddressPlan, HostSpec
from controllers.detector_core import ScanDetector, gate, refine
from controllers.flowspec import (
    NO_BUFFER,
    PORT_CONTROLLER,
    PORT_FLOOD,
    Decision,
    FlowDelete,
    FlowMatch,
    FlowSpec,
    Output,
    PacketOut,
    PacketResult,
    SetField,
)
from controllers.l2_switch_core import LearningSwitchCore
from controllers.packets import (
    ARP_REQUEST,
    ETH_IPV4,
    ArpHeader,
    FrameError,
    PacketView,
    arp_reply_frame,
    parse_packet,
    transport_match,
)
from controllers.pipeline import (
    ALL_COOKIE_BITS,
    PRIORITY_MAPPED,
    PRIORITY_REAL_DROP,
    PRIORITY_STALE_DROP,
    REFUSED_COOKIE,
    STALE_COOKIE,
    mapped_cookie,
    mapping_of_cookie,
)

LOG = logging.getLogger(__name__)


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


@dataclass
class Mapping:
    """A conversation bound to the virtual address it started on.

    expires_s: controller-side expiry while no edge flow carries the mapping yet; None once
    edge flows are installed (then the switch's idle timeout decides, via flow-removed).
    live_edge_flows: directions (0 forward, 1 reverse) whose edge flow is installed.
    """

    id: int
    key: FlowKey
    host: HostSpec
    peer_mac: str
    created_s: float
    expires_s: float | None
    live_edge_flows: set[int] = field(default_factory=set)


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


@dataclass
class RhmStats:
    """Counters since the core was created."""

    arp_replies: int = 0
    arp_refused: int = 0
    real_refused: int = 0
    stale_refused: int = 0
    mappings_created: int = 0
    mappings_removed: int = 0
    leak_refused: int = 0


class RhmCore:
    """Learning switch + host mutation (+ optional scan detector in front); see module doc."""

    def __init__(self, plan: AddressPlan, config: MutationConfig, now_s: float,
                 learning: LearningSwitchCore | None = None,
                 detector: ScanDetector | None = None) -> None:
        self.plan = plan
        self.config = config
        self.learning = learning or LearningSwitchCore()
        self.detector = detector
        self.stats = RhmStats()
        self.start_s = now_s
        self.schedule = HopSchedule(plan.protected, plan.virtual_pool, config)
        self._hosts_by_ip = {h.ip: h for h in plan.hosts}
        self._protected_by_ip = {h.ip: h for h in plan.protected}
        dpid_of = {s.name: int(s.dpid, 16) for s in plan.switches}
        self._edge = {h.name: dpid_of[h.switch] for h in plan.protected}
        self._pool = frozenset(self.schedule.pool)
        self._mappings: dict[FlowKey, Mapping] = {}
        self._by_real: dict[tuple[int, str, int | None, str, int | None], Mapping] = {}
        self._by_id: dict[int, Mapping] = {}
        self._next_id = 1

    # --- queries -------------------------------------------------------------------------
    @property
    def initial_events(self) -> tuple[HopEvent, ...]:
        return self.schedule.initial

    def current_virtual(self, host: str) -> str:
        return self.schedule.current[host]

    def owner_of_virtual(self, virtual_ip: str) -> HostSpec | None:
        """The protected host currently holding ``virtual_ip`` (None for old/unused ones)."""
        name = self.schedule.owner(virtual_ip)
        return self.plan.host(name) if name is not None else None

    def answer_mac(self, virtual_ip: str, owner: HostSpec) -> str:
        return owner.mac if self.config.arp_mac == "real" else virtual_mac(virtual_ip)

    def trusted(self, mac: str | None, ip: str) -> bool:
        """True for the plan's authorized and protected hosts, by (IP, MAC) pair; ``mac``
        None checks the IP only (a destination)."""
        host = self._hosts_by_ip.get(ip)
        return (host is not None and (mac is None or host.mac == mac)
                and (host.authorized or host.protected))

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        return tuple(self._mappings.values())

    def next_hop_in_s(self, now_s: float) -> float:
        return self.schedule.next_due_s - (now_s - self.start_s)

    # --- switch lifecycle ----------------------------------------------------------------
    def switch_connected(self, dpid: int, now_s: float) -> tuple[FlowSpec, ...]:
        flows = self.learning.switch_connected(dpid)
        if self.detector is not None:
            flows += self.detector.reconnect_flows(dpid, now_s)
        return flows

    def switch_disconnected(self, dpid: int) -> None:
        self.learning.switch_disconnected(dpid)
        for m in [m for m in self._mappings.values() if self._edge[m.host.name] == dpid]:
            self._forget(m)

    # --- hops ----------------------------------------------------------------------------
    def tick(self, now_s: float) -> tuple[HopResult, ...]:
        """Apply the hops due at ``now_s``; returns them with the flows each one needs."""
        self._expire(now_s)
        results = []
        for event in self.schedule.pop_due(now_s - self.start_s):
            results.append(self._hop_result(event, now_s))
            LOG.debug("hop %s %s -> %s", event.host, event.old_virtual, event.new_virtual)
        return tuple(results)

    def _hop_result(self, event: HopEvent, now_s: float) -> HopResult:
        dpids = self.learning.dpids
        hard_s = max(1, min(0xFFFF, math.ceil(self.config.effective_quarantine_s)))
        deletes = tuple(FlowDelete(dpid, FlowMatch(eth_type=ETH_IPV4,
                                                   ipv4_dst=event.new_virtual),
                                   STALE_COOKIE, ALL_COOKIE_BITS) for dpid in dpids)
        flows: tuple[FlowSpec, ...] = ()
        if event.old_virtual is not None:
            flows = tuple(FlowSpec(dpid=dpid, priority=PRIORITY_STALE_DROP,
                                   match=FlowMatch(eth_type=ETH_IPV4,
                                                   ipv4_dst=event.old_virtual),
                                   actions=(), hard_timeout_s=hard_s, cookie=STALE_COOKIE)
                          for dpid in dpids)
        kept = sum(1 for m in self._mappings.values() if m.key.virtual_ip == event.old_virtual)
        return HopResult(event, deletes, flows, kept, now_s)

    def flow_removed(self, cookie: int) -> None:
        """A flow with SEND_FLOW_REM left a switch; a mapping with no edge flow left ends."""
        owner = mapping_of_cookie(cookie)
        mapping = self._by_id.get(owner[0]) if owner is not None else None
        if owner is None or mapping is None:
            return
        mapping.live_edge_flows.discard(owner[1])
        if not mapping.live_edge_flows:
            self._forget(mapping)

    def _expire(self, now_s: float) -> None:
        for m in [m for m in self._mappings.values()
                  if m.expires_s is not None and m.expires_s <= now_s]:
            self._forget(m)

    def _forget(self, m: Mapping) -> None:
        if self._mappings.pop(m.key, None) is not None:
            self.stats.mappings_removed += 1
        self._by_id.pop(m.id, None)
        self._by_real.pop(self._real_key(m), None)

    @staticmethod
    def _real_key(m: Mapping) -> tuple[int, str, int | None, str, int | None]:
        k = m.key
        return (k.proto, k.peer_ip, k.peer_port, m.host.ip, k.port)

    def _new_mapping(self, key: FlowKey, host: HostSpec, peer_mac: str, now_s: float
                     ) -> Mapping:
        m = Mapping(self._next_id, key, host, peer_mac, now_s,
                    now_s + self.config.flow_idle_timeout_s + 1)
        self._next_id = self._next_id % 0x7FFFFFFF + 1
        self._mappings[key] = m
        self._by_id[m.id] = m
        self._by_real[self._real_key(m)] = m
        self.stats.mappings_created += 1
        return m

    # --- ARP -----------------------------------------------------------------------------
    def arp_verdict(self, arp: ArpHeader, src_mac: str) -> ArpVerdict:
        """The ARP policy (module doc): proxy for protected hosts, answers for virtual
        addresses, nothing about real protected addresses for untrusted askers."""
        from_protected = (arp.spa in self._protected_by_ip
                          or src_mac in {h.mac for h in self._protected_by_ip.values()})
        if from_protected:
            target = self._hosts_by_ip.get(arp.tpa)
            if arp.op == ARP_REQUEST and target is not None and arp.tpa != arp.spa:
                return ArpVerdict("reply", "proxy_for_protected", target.mac)
            return ArpVerdict("drop", "protected_arp")
        if arp.op != ARP_REQUEST:
            if arp.tpa in self._protected_by_ip and not self.trusted(src_mac, arp.spa):
                return ArpVerdict("drop", "real_refused")
            return ArpVerdict("forward", "arp")
        if arp.tpa in self._protected_by_ip:
            if self.trusted(src_mac, arp.spa):
                return ArpVerdict("reply", "real_for_trusted", self._protected_by_ip[arp.tpa].mac)
            return ArpVerdict("drop", "real_refused")
        if arp.tpa in self._pool:
            owner = self.owner_of_virtual(arp.tpa)
            if owner is None:
                # An old address stays answerable to a peer that still has a live flow on it
                # (its ARP cache entry goes stale and is re-checked during the flow).
                live = next((m for m in self._mappings.values()
                             if m.key.virtual_ip == arp.tpa and m.key.peer_ip == arp.spa), None)
                if live is None:
                    return ArpVerdict("drop", "virtual_unassigned")
                owner = live.host
            return ArpVerdict("reply", "virtual", self.answer_mac(arp.tpa, owner))
        return ArpVerdict("forward", "arp")

    def _arp(self, dpid: int, in_port: int, view: PacketView, frame: bytes, now_s: float,
             buffer_id: int) -> PacketResult:
        arp = view.arp
        assert arp is not None
        verdict = self.arp_verdict(arp, view.eth.src)
        learned = self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
        if verdict.action == "forward":
            return PacketResult(refine(learned, view, in_port))
        if verdict.action == "drop":
            self.stats.arp_refused += 1
            return PacketResult(Decision(reason=f"arp_{verdict.reason}", deletes=learned.deletes))
        assert verdict.answer_mac is not None
        self.stats.arp_replies += 1
        reply = arp_reply_frame(verdict.answer_mac, arp.tpa, arp.sha, arp.spa)
        out = PacketOut(dpid, PORT_CONTROLLER, (Output(in_port),), reply, NO_BUFFER)
        return PacketResult(Decision(reason=f"arp_{verdict.reason}", deletes=learned.deletes,
                                     packet_out=out))

    # --- IPv4 ----------------------------------------------------------------------------
    def _ipv4(self, dpid: int, in_port: int, view: PacketView, frame: bytes, now_s: float,
              buffer_id: int) -> PacketResult | None:
        ip = view.ipv4
        assert ip is not None
        data = frame if buffer_id == NO_BUFFER else b""
        if ip.dst in self._protected_by_ip and not self.trusted(view.eth.src, ip.src):
            self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
            self.stats.real_refused += 1
            drop = FlowSpec(dpid=dpid, priority=PRIORITY_REAL_DROP,
                            match=FlowMatch(in_port=in_port, eth_src=view.eth.src,
                                            eth_type=ETH_IPV4, ipv4_src=ip.src, ipv4_dst=ip.dst),
                            actions=(), idle_timeout_s=self.config.flow_idle_timeout_s,
                            cookie=REFUSED_COOKIE)
            return PacketResult(Decision(reason="real_refused", flows=(drop,)))
        if ip.dst in self._pool:
            learned = self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
            key = FlowKey(ip.proto, ip.src, ip.src_port, ip.dst, ip.dst_port)
            mapping = self._mappings.get(key)
            if mapping is None:
                owner = self.owner_of_virtual(ip.dst)
                if owner is None:
                    self.stats.stale_refused += 1
                    return PacketResult(Decision(reason="stale_virtual", deletes=learned.deletes))
                mapping = self._new_mapping(key, owner, view.eth.src, now_s)
            return PacketResult(self._to_virtual(dpid, in_port, mapping, data, buffer_id,
                                                 learned.deletes, now_s))
        if (ip.src in self._protected_by_ip and view.eth.src == self._protected_by_ip[ip.src].mac
                and not self.trusted(None, ip.dst)):
            learned = self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
            host = self._protected_by_ip[ip.src]
            if dpid != self._edge[host.name]:
                self.stats.leak_refused += 1  # a real address must never leave its edge
                return PacketResult(Decision(reason="leak_refused", deletes=learned.deletes))
            mapping = self._by_real.get((ip.proto, ip.dst, ip.dst_port, ip.src, ip.src_port))
            if mapping is None:
                key = FlowKey(ip.proto, ip.dst, ip.dst_port, self.current_virtual(host.name),
                              ip.src_port)
                mapping = self._new_mapping(key, host, view.eth.dst, now_s)
            return PacketResult(self._from_protected(dpid, in_port, mapping, data, buffer_id,
                                                     learned.deletes, now_s))
        return None

    def _edge_flows(self, dpid: int, m: Mapping, host_port: int, peer_port: int
                    ) -> tuple[FlowSpec, FlowSpec]:
        k = m.key
        vmac = self.answer_mac(k.virtual_ip, m.host)
        idle_s = self.config.flow_idle_timeout_s
        forward = FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=FlowMatch(eth_type=ETH_IPV4, ip_proto=k.proto, ipv4_src=k.peer_ip,
                            ipv4_dst=k.virtual_ip, **transport_match(k.proto, k.peer_port, k.port)),
            actions=(SetField("eth_dst", m.host.mac), SetField("ipv4_dst", m.host.ip),
                     Output(host_port)),
            idle_timeout_s=idle_s, cookie=mapped_cookie(m.id, 0), send_flow_removed=True)
        reverse = FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=FlowMatch(in_port=host_port, eth_type=ETH_IPV4, ip_proto=k.proto,
                            ipv4_src=m.host.ip, ipv4_dst=k.peer_ip,
                            **transport_match(k.proto, k.port, k.peer_port)),
            actions=(SetField("eth_src", vmac), SetField("ipv4_src", k.virtual_ip),
                     Output(peer_port)),
            idle_timeout_s=idle_s, cookie=mapped_cookie(m.id, 1), send_flow_removed=True)
        return forward, reverse

    def _to_virtual(self, dpid: int, in_port: int, m: Mapping, data: bytes, buffer_id: int,
                    deletes: tuple[FlowDelete, ...], now_s: float) -> Decision:
        """A packet from a peer to a virtual address, at ``dpid``."""
        k = m.key
        host_port = self.learning.lookup(dpid, m.host.mac, now_s)
        if dpid == self._edge[m.host.name]:
            rewrite = (SetField("eth_dst", m.host.mac), SetField("ipv4_dst", m.host.ip))
            return self._edge_rewrite(dpid, in_port, m, rewrite, host_port, "virtual", data,
                                      buffer_id, deletes)
        if host_port is None or host_port == in_port:
            out = PacketOut(dpid, in_port, (Output(PORT_FLOOD),), data, buffer_id)
            return Decision(reason="virtual_flood", deletes=deletes, packet_out=out)
        flow = FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=FlowMatch(in_port=in_port, eth_type=ETH_IPV4, ip_proto=k.proto,
                            ipv4_src=k.peer_ip, ipv4_dst=k.virtual_ip,
                            **transport_match(k.proto, k.peer_port, k.port)),
            actions=(Output(host_port),), idle_timeout_s=self.config.flow_idle_timeout_s,
            cookie=mapped_cookie(0, 0))
        out = PacketOut(dpid, in_port, (Output(host_port),), data, buffer_id)
        return Decision(reason="virtual_forward", deletes=deletes, flows=(flow,), packet_out=out)

    def _from_protected(self, dpid: int, in_port: int, m: Mapping, data: bytes, buffer_id: int,
                        deletes: tuple[FlowDelete, ...], now_s: float) -> Decision:
        """A packet from a protected host (at its edge) to an untrusted peer."""
        k = m.key
        rewrite = (SetField("eth_src", self.answer_mac(k.virtual_ip, m.host)),
                   SetField("ipv4_src", k.virtual_ip))
        peer_port = self.learning.lookup(dpid, m.peer_mac, now_s)
        return self._edge_rewrite(dpid, in_port, m, rewrite, peer_port, "protected", data,
                                  buffer_id, deletes)

    def _edge_rewrite(self, dpid: int, in_port: int, m: Mapping, rewrite: tuple[SetField, ...],
                      out_port: int | None, side: str, data: bytes, buffer_id: int,
                      deletes: tuple[FlowDelete, ...]) -> Decision:
        """At the host's edge: rewrite and send on (flooded while ``out_port`` is unknown),
        and install the mapping's two edge flows. side: ``virtual`` for a packet toward the
        protected host, ``protected`` for one from it (also the reason's first word)."""
        if out_port is None or out_port == in_port:
            out = PacketOut(dpid, in_port, (*rewrite, Output(PORT_FLOOD)), data, buffer_id)
            return Decision(reason=f"{side}_flood", deletes=deletes, packet_out=out)
        host_port, peer_port = (out_port, in_port) if side == "virtual" else (in_port, out_port)
        forward, reverse = self._edge_flows(dpid, m, host_port, peer_port)
        m.live_edge_flows.update((0, 1))
        m.expires_s = None
        out = PacketOut(dpid, in_port, (*rewrite, Output(out_port)), data, buffer_id)
        return Decision(reason=f"{side}_rewrite", deletes=deletes, flows=(forward, reverse),
                        packet_out=out)

    # --- packets -------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                  buffer_id: int = NO_BUFFER) -> PacketResult:
        """Detector (if any), then ARP policy, then mutation, else the learning switch with
        narrow flows. Never raises on bad input."""
        try:
            view = parse_packet(frame)
        except FrameError:
            return PacketResult(self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id))
        if self.detector is not None:
            verdict = gate(self.detector, view, self.learning.dpids, now_s)
            if verdict is not None:
                return verdict
        if view.arp is not None:
            return self._arp(dpid, in_port, view, bytes(frame), now_s, buffer_id)
        if view.ipv4 is not None:
            result = self._ipv4(dpid, in_port, view, bytes(frame), now_s, buffer_id)
            if result is not None:
                return result
        decision = self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
        return PacketResult(refine(decision, view, in_port))
