"""The ARP policy of the ``rhm`` core (:class:`controllers.rhm_core.RhmCore` mixes it in).

Protected hosts' own ARP requests are answered from the plan (proxy ARP), never broadcast;
virtual addresses are answered with their virtual MAC (an old one only to a peer with a live
conversation on it), decoys (:mod:`controllers.rhm_decoys`) with theirs; real protected
addresses only to trusted hosts; nothing else is changed.
"""

from __future__ import annotations

from common.plan import HostSpec
from controllers.detector_core import refine
from controllers.flowspec import (
    NO_BUFFER,
    PORT_CONTROLLER,
    Decision,
    Output,
    PacketOut,
    PacketResult,
)
from controllers.l2_switch_core import LearningSwitchCore
from controllers.packets import ARP_REQUEST, ArpHeader, PacketView, arp_reply_frame
from controllers.rhm_decoys import DecoySet
from controllers.rhm_types import ArpVerdict, FlowKey, Mapping, RhmStats


class RhmArp:
    """ARP answers and refusals; needs the core's plan indexes, mappings and learning switch."""

    _protected_by_ip: dict[str, HostSpec]
    _hosts_by_ip: dict[str, HostSpec]
    _pool: frozenset[str]
    _mappings: dict[FlowKey, Mapping]
    decoys: DecoySet
    learning: LearningSwitchCore
    stats: RhmStats

    def trusted(self, mac: str | None, ip: str) -> bool:
        raise NotImplementedError

    def owner_of_virtual(self, virtual_ip: str) -> HostSpec | None:
        raise NotImplementedError

    def answer_mac(self, virtual_ip: str, owner: HostSpec) -> str:
        raise NotImplementedError

    def decoy_mac(self, virtual_ip: str) -> str:
        raise NotImplementedError

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
                if live is None and arp.tpa in self.decoys:
                    return ArpVerdict("reply", "decoy", self.decoy_mac(arp.tpa))
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
        if verdict.reason == "decoy":
            self.stats.decoy_replies += 1
        reply = arp_reply_frame(verdict.answer_mac, arp.tpa, arp.sha, arp.spa)
        out = PacketOut(dpid, PORT_CONTROLLER, (Output(in_port),), reply, NO_BUFFER)
        return PacketResult(Decision(reason=f"arp_{verdict.reason}", deletes=learned.deletes,
                                     packet_out=out))

