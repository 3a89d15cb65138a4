"""Raw Ethernet frames for the controller cores' tests: ARP requests, IPv4 with TCP, UDP or ICMP."""

from __future__ import annotations

import ipaddress
import struct

from controllers.packets import ETH_ARP, ETH_IPV4, PROTO_TCP, TCP_FLAG_SYN

BROADCAST = "ff:ff:ff:ff:ff:ff"


def mac_bytes(mac: str) -> bytes:
    return bytes(int(b, 16) for b in mac.split(":"))


def eth(dst: str, src: str, ethertype: int) -> bytes:
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype)


def arp_request(src_mac: str, src_ip: str, target_ip: str, dst_mac: str = BROADCAST) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, 1, mac_bytes(src_mac),
                       ipaddress.IPv4Address(src_ip).packed, b"\x00" * 6,
                       ipaddress.IPv4Address(target_ip).packed)
    return eth(dst_mac, src_mac, ETH_ARP) + body + b"\x00" * 18


def ipv4(src_mac: str, dst_mac: str, src: str, dst: str, proto: int = PROTO_TCP,
         sport: int = 40000, dport: int = 502, flags: int = TCP_FLAG_SYN,
         icmp_type: int = 8) -> bytes:
    """An IPv4 frame: TCP with ``flags``, UDP (proto 17), or else ICMP of ``icmp_type``."""
    if proto == PROTO_TCP:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0)
    elif proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    else:
        l4 = struct.pack("!BBHHH", icmp_type, 0, 0, 1, 1)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return eth(dst_mac, src_mac, ETH_IPV4) + header + l4
