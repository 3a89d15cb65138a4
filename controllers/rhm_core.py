"""Pure core of the ``rhm`` app (:mod:`controllers.rhm`): random host mutation, OF-RHM style.

No I/O, no OpenFlow framework; options in :mod:`controllers.rhm_options`, records and the
hardening switches in :mod:`controllers.rhm_types`, the ARP policy in
:mod:`controllers.rhm_arp`, conversation flows and rewriting in :mod:`controllers.rhm_rewrite`,
decoy responders (``decoys``) in :mod:`controllers.rhm_decoys`; threat model:
docs/attacks-defenses.md.

Each protected host keeps its real address; the controller hands it a virtual address from the
plan's ``virtual_pool`` and changes it every hop interval (``now_s`` and a seed in, plain data
out). **Trusted** hosts (the plan's ``authorized`` ones and the protected hosts among
themselves) use real addresses; trust is the plan's (IP, MAC) pair *on the host's own switch
port* (:mod:`controllers.port_trust`): the same MAC or IP elsewhere is a spoof, dropped and
reported. **Everyone else** only sees virtual addresses: the controller answers ARP for current
virtual addresses (never for a real protected one), drops their packets to real addresses, and
rewrites virtual <-> real at the protected host's edge switch. Protected hosts' own ARP
requests are answered from the plan (proxy ARP), never broadcast. ICMP errors a protected host
sends to an untrusted peer come to the controller, which rewrites the quoted header too.

**MACs**: a virtual address's ARP answer carries :func:`common.hopschedule.virtual_mac`, in the
real hosts' MAC space, so neither the MAC nor its stability across hops gives a PLC away
(``arp_mac="real"``: the host's real MAC).

**Conversations**: each (protocol, peer IP and port, virtual IP, port) is bound to the virtual
address it started on; its edge flows carry ``send_flow_removed`` and it lives until they idle
out. At a hop every switch gets a drop flow for the old address (below the conversations'
flows) for its quarantine time, and a SYN guard above them: a new TCP connection to the old
address is dropped whatever its source port, while established ones continue. UDP
conversations keep the old address only when seen both ways, ICMP ones not at all; with
``retired_grace_s`` every conversation on it is cut that long after the hop.

**Schedule determinism**: all random choices come from one ``random.Random(seed)`` consumed in
schedule order, so the same seed gives the same (time, host, virtual address) sequence however
often :meth:`RhmCore.tick` is called.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from common.hopschedule import HopEvent, HopSchedule, MutationConfig, plan_macs, virtual_mac
from common.plan import AddressPlan, HostSpec
from controllers.detector_core import ScanDetector, gate, refine
from controllers.flowspec import (
    NO_BUFFER,
    PORT_FLOOD,
    Decision,
    FlowDelete,
    FlowMatch,
    FlowSpec,
    Output,
    PacketResult,
)
from controllers.l2_switch_core import LearningSwitchCore
from controllers.packets import (
    ETH_IPV4,
    ICMP_ERROR_TYPES,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    FrameError,
    PacketView,
    parse_packet,
)
from controllers.pipeline import (
    ALL_COOKIE_BITS,
    PRIORITY_REAL_DROP,
    PRIORITY_STALE_DROP,
    REFUSED_COOKIE,
    STALE_COOKIE,
    mapped_cookie,
    mapping_of_cookie,
)
from controllers.port_trust import PortBinding, spoof_result
from controllers.rhm_arp import RhmArp
from controllers.rhm_decoys import DecoySet, check_decoys, decoy_answer
from controllers.rhm_rewrite import RhmRewrite
from controllers.rhm_types import (
    FlowKey,
    Hardening,
    HopResult,
    Mapping,
    RealKey,
    RhmStats,
)

LOG = logging.getLogger(__name__)


class RhmCore(RhmArp, RhmRewrite):
    """Learning switch + host mutation (+ optional scan detector in front); see module doc."""

    def __init__(self, plan: AddressPlan, config: MutationConfig, now_s: float,
                 learning: LearningSwitchCore | None = None,
                 detector: ScanDetector | None = None,
                 hardening: Hardening | None = None, decoys: int = 0) -> None:
        self.plan = plan
        self.config = config
        self.hardening = hardening or Hardening()
        self.binding = PortBinding(plan) if self.hardening.bind_ports else None
        self._plan_macs = plan_macs(plan)
        self._protected_macs = frozenset(h.mac for h in plan.protected)
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
        self._by_real: dict[RealKey, Mapping] = {}
        self._by_id: dict[int, Mapping] = {}
        self._next_id = 1
        check_decoys(decoys, len(self.schedule.pool), len(plan.protected))
        self.decoys = DecoySet(self.schedule.pool, decoys, config.seed)
        self.decoys.redraw(self._live_virtuals())

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
        if self.config.arp_mac == "real":
            return owner.mac
        return virtual_mac(virtual_ip, self._plan_macs)

    def decoy_mac(self, virtual_ip: str) -> str:
        """A decoy's MAC: as a host's virtual MAC, whatever ``arp_mac`` says (a decoy has no
        real MAC to answer with)."""
        return virtual_mac(virtual_ip, self._plan_macs)

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
        if results:
            self.decoys.redraw(self._live_virtuals())
        return tuple(results)

    def _live_virtuals(self) -> set[str]:
        """Addresses a decoy must not take: current ones and those conversations still use."""
        return {*self.schedule.current.values(), *(k.virtual_ip for k in self._mappings)}

    def _hop_result(self, event: HopEvent, now_s: float) -> HopResult:
        dpids = self.learning.dpids
        hard_s = max(1, min(0xFFFF, math.ceil(self.config.effective_quarantine_s)))
        deletes = tuple(FlowDelete(dpid, FlowMatch(eth_type=ETH_IPV4,
                                                   ipv4_dst=event.new_virtual),
                                   STALE_COOKIE, ALL_COOKIE_BITS) for dpid in dpids)
        flows: tuple[FlowSpec, ...] = ()
        old = event.old_virtual
        if old is not None:
            flows = tuple(FlowSpec(dpid=dpid, priority=PRIORITY_STALE_DROP,
                                   match=FlowMatch(eth_type=ETH_IPV4, ipv4_dst=old),
                                   actions=(), hard_timeout_s=hard_s, cookie=STALE_COOKIE)
                          for dpid in dpids)
        ended: list[FlowDelete] = []
        for m in [m for m in self._mappings.values() if m.key.virtual_ip == old]:
            m.retired_s = now_s
            if not self.hardening.syn_guard:
                continue
            if not self._survives_hop(m):
                ended += self._end(m)
            elif m.key.proto == PROTO_TCP:
                ended += [FlowDelete(f.dpid, f.match) for f in self._watch(m, dpids)]
                flows += self._watch(m, dpids)
        kept = sum(1 for m in self._mappings.values() if m.key.virtual_ip == old)
        return HopResult(event, deletes + tuple(ended), flows, kept, now_s)

    @staticmethod
    def _survives_hop(m: Mapping) -> bool:
        """TCP conversations keep their address (a new SYN meets the SYN guard); UDP ones only
        when seen both ways; anything else (ICMP) not."""
        return m.key.proto == PROTO_TCP or (m.key.proto == PROTO_UDP and m.both_ways)

    def _end(self, m: Mapping) -> list[FlowDelete]:
        """Forget ``m`` and delete its edge flows (by their cookies)."""
        self._forget(m)
        dpid = self._edge[m.host.name]
        return [FlowDelete(dpid, FlowMatch(), mapped_cookie(m.id, d), ALL_COOKIE_BITS)
                for d in (0, 1)]

    def cut_retired(self, now_s: float) -> tuple[FlowDelete, ...]:
        """Deletes ending conversations whose address retired more than
        ``hardening.retired_grace_s`` ago (none when that is None)."""
        grace_s = self.hardening.retired_grace_s
        if grace_s is None:
            return ()
        due = [m for m in self._mappings.values()
               if m.retired_s is not None and now_s - m.retired_s >= grace_s]
        self.stats.retired_cut += len(due)
        return tuple(d for m in due for d in self._end(m))

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
    def _real_key(m: Mapping) -> RealKey:
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
            if (mapping is not None and mapping.retired_s is not None
                    and self.hardening.syn_guard and ip.proto == PROTO_TCP and ip.initiates):
                self.stats.stale_syn_refused += 1
                return PacketResult(Decision(reason="stale_syn", deletes=learned.deletes))
            if mapping is not None and mapping.created_side == 1:
                mapping.both_ways = True
            if mapping is None:
                owner = self.owner_of_virtual(ip.dst)
                if owner is None and ip.dst in self.decoys:
                    decision = decoy_answer(dpid, in_port, frame, self.decoy_mac(ip.dst),
                                            learned.deletes)
                    if decision.packet_out is not None:
                        self.stats.decoy_replies += 1
                    return PacketResult(decision)
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
            if (ip.proto == PROTO_ICMP and ip.icmp_type in ICMP_ERROR_TYPES
                    and self.hardening.icmp_rewrite):
                return PacketResult(self._icmp_error(dpid, in_port, host, view, frame,
                                                     learned.deletes, now_s))
            mapping = self._by_real.get((ip.proto, ip.dst, ip.dst_port, ip.src, ip.src_port))
            if mapping is not None and mapping.created_side == 0:
                mapping.both_ways = True
            if (mapping is None and ip.proto == PROTO_TCP and not ip.initiates
                    and self.hardening.syn_guard):
                # A segment of a conversation that ended here (cut, idled out): sending it
                # from the current address would link the old and new addresses.
                return PacketResult(Decision(reason="orphan_refused", deletes=learned.deletes))
            if mapping is None:
                key = FlowKey(ip.proto, ip.dst, ip.dst_port, self.current_virtual(host.name),
                              ip.src_port)
                mapping = self._new_mapping(key, host, view.eth.dst, now_s)
                mapping.created_side = 1
            return PacketResult(self._from_protected(dpid, in_port, mapping, data, buffer_id,
                                                     learned.deletes, now_s))
        return None

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
        if self.binding is not None:
            src_ip = (view.arp.spa if view.arp is not None
                      else view.ipv4.src if view.ipv4 is not None else None)
            spoof = self.binding.check(dpid, in_port, view.eth.src, src_ip, now_s)
            if spoof is not None:
                self.stats.spoof_refused += 1
                return spoof_result(spoof, view.ipv4 is not None,
                                    self.config.flow_idle_timeout_s)
        if view.arp is None and view.ipv4 is None and view.eth.src in self._protected_macs:
            # IPv6 neighbour discovery and the like: a protected host's real MAC (and an
            # address made from it) would reach every host. The plan is IPv4-only.
            return PacketResult(Decision(reason="protected_non_ipv4"))
        if view.arp is not None:
            return self._arp(dpid, in_port, view, bytes(frame), now_s, buffer_id)
        if view.ipv4 is not None:
            result = self._ipv4(dpid, in_port, view, bytes(frame), now_s, buffer_id)
            if result is not None:
                return result
        decision = refine(self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id),
                          view, in_port)
        return PacketResult(self._contain(dpid, in_port, view, decision))

    def _contain(self, dpid: int, in_port: int, view: PacketView, decision: Decision
                 ) -> Decision:
        """A flooded frame carrying a real protected address (trusted traffic before its
        destination is learned) goes only toward its destination, never out of every port."""
        out = decision.packet_out
        ip = view.ipv4
        if (self.binding is None or out is None or ip is None
                or Output(PORT_FLOOD) not in out.actions
                or not {ip.src, ip.dst} & self._protected_by_ip.keys()):
            return decision
        ports = self.binding.no_flood_ports(dpid, in_port, ip.dst)
        actions = tuple(Output(p) for p in ports)
        return replace(decision, reason="contained_flood",
                       packet_out=replace(out, actions=actions) if actions else None)
