"""The per-address interfaces of :mod:`defenses.nat_hop`: a virtual MAC for each virtual address.

Pure (names, numbers, commands, parsers); :mod:`defenses.nat_hop` runs what it returns.

Without them (``--arp-mac real``) a virtual address is a secondary address of the host's own
interface, so the kernel answers ARP for it with the host's real MAC, the same at every hop:
an attacker follows the PLC across hops by its MAC. With them (the default, ``--arp-mac
virtual``) each virtual address ``V`` lives on its own **macvlan** interface over the host's
interface, whose MAC is :func:`common.hopschedule.virtual_mac` of ``V`` (the one rule ``rhm``
uses too: a MAC in the real hosts' own space, never a plan host's). Then:

- **ARP**: the host interface gets ``arp_ignore=1`` (answer only for addresses on the asking
  interface), so a request for ``V`` is answered by ``V``'s interface alone, with its MAC; a
  request for the real address ``R`` only by the host interface (and only to trusted pairs:
  :func:`defenses.nat_rules.arp_ruleset`). The macvlan gets ``arp_ignore=1`` too (it never
  answers for ``R``) and no IPv6 (no router solicitation announcing its MAC at each hop).
- **Replies**: a new conversation to ``V`` gets a connection mark (``mangle PREROUTING -d V``,
  :func:`defenses.nat_rules.mark_rule`); ``mangle OUTPUT`` copies it to every reply packet,
  whose policy rule (``fwmark M lookup M``) routes the subnet out of ``V``'s interface: replies
  leave with ``V``'s MAC even after ``V`` retired, so a conversation started before a hop
  continues with the MAC it began with and never shows the next address's MAC or the real one.
- **Trusted hosts** still reach ``R`` on the host interface with its real MAC (no mark).

One number ``M`` (:func:`mark_of`) is the connection mark, the firewall mark and the routing
table of ``V``. Interfaces are named ``sdnh`` + the address in hex (:data:`LINK_PREFIX`), the
policy rules carry rtnetlink protocol :data:`RULE_PROTO`: the crash clean-up finds exactly
these (:func:`tagged_links`, :func:`tagged_rules`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass

from common.hopschedule import virtual_mac

LINK_PREFIX = "sdnh"
LINK_NAME_RE = re.compile(rf"^{LINK_PREFIX}[0-9a-f]{{8}}$")
MARK_BASE = 0x5D000000
MARK_MASK = 0xFF000000  # the marks of this defense: MARK_BASE + the address's low 24 bits
RULE_PROTO = 209  # rtnetlink protocol number on the policy rules (and neighbour entries)
ARP_IGNORE = "1"  # reply only for addresses configured on the asking interface


@dataclass(frozen=True)
class VirtualLink:
    """The interface carrying one virtual address. mark: its connection mark, firewall mark
    and routing table id."""

    virtual_ip: str
    name: str
    mac: str
    mark: int


def mark_of(virtual_ip: str) -> int:
    """``MARK_BASE`` + the address's low 24 bits (distinct for every address of a /8)."""
    return MARK_BASE | (int(ipaddress.IPv4Address(virtual_ip)) & 0x00FFFFFF)


def link_for(virtual_ip: str, avoid_macs: Collection[str] = ()) -> VirtualLink:
    """The interface of ``virtual_ip``; avoid_macs: the plan's real MACs (never answered)."""
    name = LINK_PREFIX + ipaddress.IPv4Address(virtual_ip).packed.hex()
    return VirtualLink(virtual_ip, name, virtual_mac(virtual_ip, avoid_macs),
                       mark_of(virtual_ip))


def sysctl_path(ifname: str, key: str, family: str = "ipv4") -> str:
    """The ``/proc/sys`` path of one interface's setting."""
    return f"/proc/sys/net/{family}/conf/{ifname}/{key}"


def link_create_commands(link: VirtualLink, lower: str) -> tuple[tuple[str, ...], ...]:
    """Create the interface (down); its settings (:func:`link_sysctls`) come next."""
    return (("ip", "link", "add", "link", lower, "name", link.name, "address", link.mac,
             "type", "macvlan", "mode", "bridge"),)


def link_sysctls(link: VirtualLink) -> tuple[tuple[str, str], ...]:
    """(path, value) written before the interface comes up (see module doc)."""
    return ((sysctl_path(link.name, "disable_ipv6", "ipv6"), "1"),
            (sysctl_path(link.name, "arp_ignore"), ARP_IGNORE))


def link_up_commands(link: VirtualLink, subnet: str) -> tuple[tuple[str, ...], ...]:
    """Address, up, and the policy route that sends marked replies out of this interface."""
    mark = str(link.mark)
    return (("ip", "addr", "add", f"{link.virtual_ip}/32", "dev", link.name),
            ("ip", "link", "set", link.name, "up"),
            ("ip", "rule", "add", "fwmark", mark, "lookup", mark, "protocol", str(RULE_PROTO)),
            ("ip", "route", "replace", subnet, "dev", link.name, "table", mark))


def link_remove_commands(link: VirtualLink) -> tuple[tuple[str, ...], ...]:
    """Policy rule, then the interface (its address and routes go with it)."""
    mark = str(link.mark)
    return (("ip", "rule", "del", "fwmark", mark, "lookup", mark),
            ("ip", "link", "del", link.name))


def tagged_links(ip_link_json: list[dict]) -> tuple[str, ...]:
    """From parsed ``ip -j -d link show``, this defense's interfaces (macvlans by name)."""
    return tuple(link["ifname"] for link in ip_link_json
                 if LINK_NAME_RE.match(str(link.get("ifname", "")))
                 and link.get("linkinfo", {}).get("info_kind") == "macvlan")


def tagged_rules(ip_rule_json: list[dict]) -> tuple[str, ...]:
    """From parsed ``ip -j rule show``, the fwmarks of this defense's policy rules."""
    return tuple(str(r.get("fwmark")) for r in ip_rule_json
                 if str(r.get("protocol", "")) in (str(RULE_PROTO), hex(RULE_PROTO))
                 and r.get("fwmark") is not None)
