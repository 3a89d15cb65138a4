"""Conversation flows of the ``rhm`` core (:class:`controllers.rhm_core.RhmCore` mixes it in).

What a conversation between an untrusted peer and a protected host's virtual address looks like
on the switches: at the protected host's edge, two flows rewrite virtual <-> real (IP and MAC);
elsewhere, a plain forwarding flow on the virtual address. A retired TCP conversation's flows
toward the host are replaced by flows to the controller (the SYN guard watches each packet).
ICMP errors from a protected host come to the controller, which rewrites the quoted header
(a switch cannot rewrite inside the ICMP payload).
"""

from __future__ import annotations

from common.hopschedule import MutationConfig
from common.plan import HostSpec
from controllers import flowspec as fs
from controllers.l2_switch_core import LearningSwitchCore
from controllers.packets import (
    ETH_IPV4,
    ICMP_ECHO_REPLY,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    PacketView,
    icmp_quoted,
    rewrite_icmp_error,
    transport_match,
)
from controllers.pipeline import PRIORITY_MAPPED, mapped_cookie
from controllers.rhm_types import Hardening, Mapping, RealKey, RhmStats


class RhmRewrite:
    """Flows and packet-outs of conversations; needs the core's config, edges and indexes."""

    config: MutationConfig
    hardening: Hardening
    learning: LearningSwitchCore
    stats: RhmStats
    _edge: dict[str, int]
    _by_real: dict[RealKey, Mapping]

    def current_virtual(self, host: str) -> str:
        raise NotImplementedError

    def answer_mac(self, virtual_ip: str, owner: HostSpec) -> str:
        raise NotImplementedError

    def _watch(self, m: Mapping, dpids: tuple[int, ...]) -> tuple[fs.FlowSpec, ...]:
        """A retired TCP conversation's peer-to-host flows, replaced on every switch (after
        deleting the old ones) by flows to the controller, above the retired address's drop:
        a SYN (a new connection on a reused 5-tuple) is dropped here, the rest sent on by
        packet-out (:meth:`_watched`). The edge one keeps the mapping's cookie and idle
        timeout, so the mapping still ends when the conversation idles out."""
        k = m.key
        match = fs.FlowMatch(eth_type=ETH_IPV4, ip_proto=k.proto, ipv4_src=k.peer_ip,
                          ipv4_dst=k.virtual_ip, **transport_match(k.proto, k.peer_port, k.port))
        edge = self._edge[m.host.name]
        to_controller = (fs.Output(fs.PORT_CONTROLLER, fs.CONTROLLER_MAX_LEN_NO_BUFFER),)
        return tuple(fs.FlowSpec(dpid=dpid, priority=PRIORITY_MAPPED, match=match,
                              actions=to_controller,
                              idle_timeout_s=self.config.flow_idle_timeout_s,
                              cookie=mapped_cookie(m.id if dpid == edge else 0, 0),
                              send_flow_removed=dpid == edge)
                     for dpid in dpids)

    def _watched(self, m: Mapping) -> bool:
        return (m.retired_s is not None and m.key.proto == PROTO_TCP
                and self.hardening.syn_guard)

    def _icmp_error(self, dpid: int, in_port: int, host: HostSpec, view: PacketView,
                    frame: bytes, deletes: tuple[fs.FlowDelete, ...], now_s: float) -> fs.Decision:
        """An ICMP error from ``host`` to an untrusted peer: sent on with its outer source and
        the quoted header's destination (the real address) both rewritten to the virtual
        address the peer used (the conversation's, else the host's current one). No flow: a
        switch cannot rewrite inside the ICMP payload, so every error comes here."""
        quoted = icmp_quoted(frame)
        if quoted is None or quoted.dst != host.ip or not frame:
            return fs.Decision(reason="icmp_error_dropped", deletes=deletes)
        m = self._by_real.get((quoted.proto, quoted.src, quoted.src_port, host.ip,
                               quoted.dst_port))
        virtual_ip = m.key.virtual_ip if m is not None else self.current_virtual(host.name)
        out_frame = rewrite_icmp_error(frame, self.answer_mac(virtual_ip, host), virtual_ip,
                                       virtual_ip)
        self.stats.icmp_quotes_rewritten += 1
        port = self.learning.lookup(dpid, view.eth.dst, now_s)
        out_port = fs.PORT_FLOOD if port is None or port == in_port else port
        out = fs.PacketOut(dpid, fs.PORT_CONTROLLER, (fs.Output(out_port),), out_frame,
                           fs.NO_BUFFER)
        return fs.Decision(reason="icmp_quote_rewritten", deletes=deletes, packet_out=out)

    def _edge_flows(self, dpid: int, m: Mapping, host_port: int, peer_port: int
                    ) -> tuple[fs.FlowSpec, fs.FlowSpec]:
        k = m.key
        vmac = self.answer_mac(k.virtual_ip, m.host)
        idle_s = self.config.flow_idle_timeout_s
        forward = fs.FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=fs.FlowMatch(eth_type=ETH_IPV4, ip_proto=k.proto, ipv4_src=k.peer_ip,
                            ipv4_dst=k.virtual_ip, **transport_match(k.proto, k.peer_port, k.port)),
            actions=(fs.SetField("eth_dst", m.host.mac), fs.SetField("ipv4_dst", m.host.ip),
                     fs.Output(host_port)),
            idle_timeout_s=idle_s, cookie=mapped_cookie(m.id, 0), send_flow_removed=True)
        reverse = fs.FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=fs.FlowMatch(in_port=host_port, eth_type=ETH_IPV4, ip_proto=k.proto,
                            ipv4_src=m.host.ip, ipv4_dst=k.peer_ip,
                            icmpv4_type=(ICMP_ECHO_REPLY if k.proto == PROTO_ICMP
                                         and self.hardening.icmp_rewrite else None),
                            **transport_match(k.proto, k.port, k.peer_port)),
            actions=(fs.SetField("eth_src", vmac), fs.SetField("ipv4_src", k.virtual_ip),
                     fs.Output(peer_port)),
            idle_timeout_s=idle_s, cookie=mapped_cookie(m.id, 1), send_flow_removed=True)
        return forward, reverse

    def _to_virtual(self, dpid: int, in_port: int, m: Mapping, data: bytes, buffer_id: int,
                    deletes: tuple[fs.FlowDelete, ...], now_s: float) -> fs.Decision:
        """A packet from a peer to a virtual address, at ``dpid``."""
        k = m.key
        host_port = self.learning.lookup(dpid, m.host.mac, now_s)
        if dpid == self._edge[m.host.name]:
            rewrite = (fs.SetField("eth_dst", m.host.mac), fs.SetField("ipv4_dst", m.host.ip))
            return self._edge_rewrite(dpid, in_port, m, rewrite, host_port, "virtual", data,
                                      buffer_id, deletes)
        if host_port is None or host_port == in_port:
            out = fs.PacketOut(dpid, in_port, (fs.Output(fs.PORT_FLOOD),), data, buffer_id)
            return fs.Decision(reason="virtual_flood", deletes=deletes, packet_out=out)
        if self._watched(m):
            out = fs.PacketOut(dpid, in_port, (fs.Output(host_port),), data, buffer_id)
            return fs.Decision(reason="retired_forward", deletes=deletes, packet_out=out)
        flow = fs.FlowSpec(
            dpid=dpid, priority=PRIORITY_MAPPED,
            match=fs.FlowMatch(in_port=in_port, eth_type=ETH_IPV4, ip_proto=k.proto,
                            ipv4_src=k.peer_ip, ipv4_dst=k.virtual_ip,
                            **transport_match(k.proto, k.peer_port, k.port)),
            actions=(fs.Output(host_port),), idle_timeout_s=self.config.flow_idle_timeout_s,
            cookie=mapped_cookie(0, 0))
        out = fs.PacketOut(dpid, in_port, (fs.Output(host_port),), data, buffer_id)
        return fs.Decision(reason="virtual_forward", deletes=deletes, flows=(flow,), packet_out=out)

    def _from_protected(self, dpid: int, in_port: int, m: Mapping, data: bytes, buffer_id: int,
                        deletes: tuple[fs.FlowDelete, ...], now_s: float) -> fs.Decision:
        """A packet from a protected host (at its edge) to an untrusted peer."""
        k = m.key
        rewrite = (fs.SetField("eth_src", self.answer_mac(k.virtual_ip, m.host)),
                   fs.SetField("ipv4_src", k.virtual_ip))
        peer_port = self.learning.lookup(dpid, m.peer_mac, now_s)
        return self._edge_rewrite(dpid, in_port, m, rewrite, peer_port, "protected", data,
                                  buffer_id, deletes)

    def _edge_rewrite(self, dpid: int, in_port: int, m: Mapping, rewrite: tuple[fs.SetField, ...],
                      out_port: int | None, side: str, data: bytes, buffer_id: int,
                      deletes: tuple[fs.FlowDelete, ...]) -> fs.Decision:
        """At the host's edge: rewrite and send on (flooded while ``out_port`` is unknown),
        and install the mapping's two edge flows. side: ``virtual`` for a packet toward the
        protected host, ``protected`` for one from it (also the reason's first word)."""
        if out_port is None or out_port == in_port:
            out = fs.PacketOut(dpid, in_port, (*rewrite, fs.Output(fs.PORT_FLOOD)), data, buffer_id)
            return fs.Decision(reason=f"{side}_flood", deletes=deletes, packet_out=out)
        host_port, peer_port = (out_port, in_port) if side == "virtual" else (in_port, out_port)
        forward, reverse = self._edge_flows(dpid, m, host_port, peer_port)
        directions: tuple[int, ...] = (0, 1)
        if self._watched(m):  # no flow toward the host: each packet is checked here
            directions = (1,) if side == "protected" else ()
        elif m.key.proto == PROTO_UDP and not m.both_ways and self.hardening.syn_guard:
            # Only this direction's flow: the other side's first packet comes here, so the
            # core learns the conversation was seen both ways.
            directions = (0,) if side == "virtual" else (1,)
        m.live_edge_flows.update(directions)
        m.expires_s = None
        out = fs.PacketOut(dpid, in_port, (*rewrite, fs.Output(out_port)), data, buffer_id)
        flows = tuple(f for d, f in ((0, forward), (1, reverse)) if d in directions)
        return fs.Decision(reason=f"{side}_rewrite", deletes=deletes, flows=flows,
                        packet_out=out)
