"""Trust bound to the switch port (pure): which port each trusted host may send from.

The plan says which switch each host is on and :meth:`common.plan.AddressPlan.edge_ports` which
port of it (the topology builds its links with those numbers). A frame that claims the MAC or
the IP of an authorized or protected host is believed only where that host can really be: on
its own port at its edge switch, or on a trunk port of any other switch. Anywhere else it is a
spoof: :class:`controllers.rhm_core.RhmCore` drops it (before the learning switch can learn the
MAC at the wrong port) and reports a :class:`SpoofEvent`, written to the detect log.

What this cannot see: a spoof from a host on another switch that arrives over a trunk is caught
at the attacker's own edge switch, not further on; a frame with neither a claimed MAC nor a
claimed IP (the attacker's own identity) is not a spoof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.plan import AddressPlan, HostSpec
from controllers.flowspec import Decision, FlowMatch, FlowSpec, PacketResult
from controllers.packets import ETH_IPV4
from controllers.pipeline import PRIORITY_REAL_DROP, REFUSED_COOKIE


@dataclass(frozen=True)
class SpoofEvent:
    """A frame claiming a trusted host's identity from a port that host is not on.

    claims: ``mac``, ``ip`` or ``mac+ip`` (which of the host's identifiers the frame used).
    """

    t_s: float
    dpid: int
    in_port: int
    src_mac: str
    src_ip: str | None
    host: str
    claims: str

    def record(self) -> dict[str, Any]:
        """The JSON-ready fields of the detect log (``kind`` tells it from a scan)."""
        return {"kind": "spoof", "src_mac": self.src_mac, "src_ip": self.src_ip,
                "dpid": self.dpid, "in_port": self.in_port, "claims_host": self.host,
                "claims": self.claims}


class PortBinding:
    """Each trusted host's (switch, port), from the plan; see the module doc."""

    def __init__(self, plan: AddressPlan) -> None:
        dpid_of = {s.name: int(s.dpid, 16) for s in plan.switches}
        ports = plan.edge_ports()
        self._trusted = [h for h in plan.hosts if h.authorized or h.protected]
        self._by_mac = {h.mac: h for h in self._trusted}
        self._by_ip = {h.ip: h for h in self._trusted}
        self._edge = {h.name: (dpid_of[ports[h.name][0]], ports[h.name][1])
                      for h in self._trusted}
        self._port_of_ip = {h.ip: (dpid_of[ports[h.name][0]], ports[h.name][1])
                            for h in plan.hosts}
        self._trunk_ports: dict[int, set[int]] = {d: set() for d in dpid_of.values()}
        for (a, b), (port_a, port_b) in zip(plan.trunks, plan.trunk_ports(), strict=True):
            self._trunk_ports[dpid_of[a]].add(port_a)
            self._trunk_ports[dpid_of[b]].add(port_b)

    def allowed(self, host: HostSpec, dpid: int, in_port: int) -> bool:
        """True when ``host``'s frames can arrive on (dpid, in_port)."""
        edge_dpid, edge_port = self._edge[host.name]
        if dpid == edge_dpid:
            return in_port == edge_port
        return in_port in self._trunk_ports.get(dpid, set())

    def no_flood_ports(self, dpid: int, in_port: int, dst_ip: str) -> tuple[int, ...]:
        """Where a frame that must not be flooded goes instead: the destination host's own
        port when it is on this switch, else every trunk port but ``in_port``."""
        edge = self._port_of_ip.get(dst_ip)
        if edge is not None and edge[0] == dpid:
            return (edge[1],) if edge[1] != in_port else ()
        return tuple(sorted(p for p in self._trunk_ports.get(dpid, set()) if p != in_port))

    def check(self, dpid: int, in_port: int, src_mac: str, src_ip: str | None, now_s: float
              ) -> SpoofEvent | None:
        """A SpoofEvent when the frame claims a trusted host's MAC or IP from a wrong port."""
        by_mac = self._by_mac.get(src_mac)
        by_ip = self._by_ip.get(src_ip) if src_ip is not None else None
        for host, claims in ((by_mac, "mac"), (by_ip, "ip")):
            if host is not None and not self.allowed(host, dpid, in_port):
                if by_mac is not None and by_mac is by_ip:
                    claims = "mac+ip"
                return SpoofEvent(now_s, dpid, in_port, src_mac, src_ip, host.name, claims)
        return None


def spoof_result(spoof: SpoofEvent, is_ipv4: bool, idle_s: int) -> PacketResult:
    """Drop the spoofed frame, and the rest of its kind on that port for ``idle_s`` (a narrow
    flow: the claimed MAC, or the sender's MAC with the claimed IP; the sender's own traffic
    is untouched); the event is the result's detection."""
    if "mac" in spoof.claims:
        match = FlowMatch(in_port=spoof.in_port, eth_src=spoof.src_mac)
    elif is_ipv4:
        match = FlowMatch(in_port=spoof.in_port, eth_src=spoof.src_mac, eth_type=ETH_IPV4,
                          ipv4_src=spoof.src_ip)
    else:
        return PacketResult(Decision(reason="spoof_refused"), detection=spoof)
    drop = FlowSpec(dpid=spoof.dpid, priority=PRIORITY_REAL_DROP, match=match, actions=(),
                    idle_timeout_s=idle_s, cookie=REFUSED_COOKIE)
    return PacketResult(Decision(reason="spoof_refused", flows=(drop,)), detection=spoof)
