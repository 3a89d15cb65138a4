"""Pure parsing of the frames that reach the controller, the flow matches they give, and ARP
replies.

The one module below the cores that reads packet bytes: the Ethernet header (all a learning
switch needs), and the ARP, IPv4, TCP/UDP port and ICMP type fields the defense cores look at.
No OpenFlow framework: frames are parsed with :mod:`struct`, so hostile frames never reach the
framework's packet library (Ryu's parsers have known hangs on malformed input, CVE-2024-28732).

An Ethernet header too short to use raises :class:`FrameError`; a truncated or malformed
ARP/IPv4 header is not an error: the :class:`PacketView` simply has ``arp``/``ipv4`` set to None
and the frame is handled as plain Ethernet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from common.checksum import internet_checksum
from controllers.flowspec import FlowMatch

ETH_HEADER_BYTES = 14
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
ARP_REQUEST = 1
ARP_REPLY = 2
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
TCP_FLAG_SYN = 0x02
TCP_FLAG_ACK = 0x10

_ETH_HEADER = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa
_IPV4 = struct.Struct("!BBHHHBBH4s4s")


class FrameError(ValueError):
    """A frame the controller cannot use at all (too short for Ethernet, not bytes)."""


@dataclass(frozen=True)
class EthernetHeader:
    """The only part of a frame an L2 switch needs. MACs are lower-case ``aa:bb:cc:dd:ee:ff``.

    ethertype: the outer EtherType/length field (a VLAN tag shows up as 0x8100).
    """

    dst: str
    src: str
    ethertype: int


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def parse_ethernet(frame: bytes | bytearray | memoryview) -> EthernetHeader:
    """Decode the Ethernet header; raises :class:`FrameError` on anything unusable."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise FrameError(f"frame is {type(frame).__name__}, not bytes")
    if len(frame) < ETH_HEADER_BYTES:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than an Ethernet header")
    dst, src, ethertype = _ETH_HEADER.unpack_from(bytes(frame[:ETH_HEADER_BYTES]))
    return EthernetHeader(dst=_mac(dst), src=_mac(src), ethertype=ethertype)


def is_group_mac(mac: str) -> bool:
    """True for broadcast and multicast addresses (I/G bit set)."""
    return int(mac[:2], 16) & 0x01 == 1


def is_link_local_control(mac: str) -> bool:
    """01:80:c2:00:00:0X: STP, LACP, LLDP... 802.1D bridges must not forward these."""
    return mac.startswith("01:80:c2:00:00:0")


@dataclass(frozen=True)
class ArpHeader:
    """An Ethernet/IPv4 ARP message. op: 1 request, 2 reply; sha/tha MACs, spa/tpa IPs."""

    op: int
    sha: str
    spa: str
    tha: str
    tpa: str


@dataclass(frozen=True)
class Ipv4Header:
    """The IPv4 fields flows match on.

    src_port / dst_port: TCP or UDP ports; None for other protocols and non-first fragments.
    tcp_flags: the TCP flag byte (None unless TCP). icmp_type: None unless ICMP.
    """

    src: str
    dst: str
    proto: int
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int | None = None
    icmp_type: int | None = None

    @property
    def initiates(self) -> bool:
        """True for a packet that opens a conversation: TCP SYN without ACK, any UDP datagram,
        ICMP echo request. Replies (SYN-ACK, RST, echo reply) are not probes."""
        if self.proto == PROTO_TCP:
            flags = self.tcp_flags or 0
            return bool(flags & TCP_FLAG_SYN) and not flags & TCP_FLAG_ACK
        if self.proto == PROTO_UDP:
            return True
        return self.proto == PROTO_ICMP and self.icmp_type == ICMP_ECHO_REQUEST


@dataclass(frozen=True)
class PacketView:
    """A frame's Ethernet header plus its ARP or IPv4 header when it has a usable one."""

    eth: EthernetHeader
    arp: ArpHeader | None = None
    ipv4: Ipv4Header | None = None


def _parse_arp(body: bytes) -> ArpHeader | None:
    if len(body) < _ARP.size:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(body)
    if (htype, ptype, hlen, plen) != (1, ETH_IPV4, 6, 4):
        return None
    return ArpHeader(op=op, sha=_mac(sha), spa=str(ipaddress.IPv4Address(spa)),
                     tha=_mac(tha), tpa=str(ipaddress.IPv4Address(tpa)))


def _parse_ipv4(body: bytes) -> Ipv4Header | None:
    if len(body) < _IPV4.size:
        return None
    ver_ihl, _tos, _total, _ident, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(body)
    header_bytes = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or header_bytes < _IPV4.size or len(body) < header_bytes:
        return None
    base = Ipv4Header(src=str(ipaddress.IPv4Address(src)),
                      dst=str(ipaddress.IPv4Address(dst)), proto=proto)
    if frag & 0x1FFF:  # a later fragment carries no transport header
        return base
    l4 = body[header_bytes:]
    if proto in (PROTO_TCP, PROTO_UDP) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        flags = l4[13] if proto == PROTO_TCP and len(l4) >= 14 else None
        if proto == PROTO_TCP and flags is None:
            return base
        return Ipv4Header(base.src, base.dst, proto, sport, dport, tcp_flags=flags)
    if proto == PROTO_ICMP and len(l4) >= 1:
        return Ipv4Header(base.src, base.dst, proto, icmp_type=l4[0])
    return base


def parse_packet(frame: bytes | bytearray | memoryview) -> PacketView:
    """Ethernet header (raises :class:`FrameError` if unusable) plus
    ARP or IPv4 when present and well-formed. VLAN-tagged frames are left as plain Ethernet."""
    eth = parse_ethernet(frame)
    body = bytes(frame[ETH_HEADER_BYTES:])
    if eth.ethertype == ETH_ARP:
        return PacketView(eth, arp=_parse_arp(body))
    if eth.ethertype == ETH_IPV4:
        return PacketView(eth, ipv4=_parse_ipv4(body))
    return PacketView(eth)


def arp_reply_frame(answer_mac: str, answer_ip: str, to_mac: str, to_ip: str) -> bytes:
    """An Ethernet ARP reply saying ``answer_ip is-at answer_mac``, addressed to the asker."""
    eth = _mac_bytes(to_mac) + _mac_bytes(answer_mac) + struct.pack("!H", ETH_ARP)
    arp = _ARP.pack(1, ETH_IPV4, 6, 4, ARP_REPLY, _mac_bytes(answer_mac),
                    ipaddress.IPv4Address(answer_ip).packed, _mac_bytes(to_mac),
                    ipaddress.IPv4Address(to_ip).packed)
    return eth + arp + b"\x00" * 18  # pad to the 60-byte Ethernet minimum


def transport_match(proto: int, src_port: int | None, dst_port: int | None,
                    with_src: bool = True) -> dict[str, int]:
    """``tcp_src``/``tcp_dst`` (or ``udp_*``) match fields, source port only when ``with_src``.

    Empty unless ``proto`` is TCP or UDP and both ports are known (a later fragment has none).
    """
    if proto not in (PROTO_TCP, PROTO_UDP) or src_port is None or dst_port is None:
        return {}
    prefix = "tcp" if proto == PROTO_TCP else "udp"
    out = {f"{prefix}_dst": dst_port}
    if with_src:
        out[f"{prefix}_src"] = src_port
    return out


def fine_match(in_port: int | None, view: PacketView, src_port: bool = False) -> FlowMatch:
    """A match as narrow as a per-conversation flow: Ethernet addresses and type, and for IPv4
    the addresses, protocol and destination port (and source port when ``src_port``).

    Narrow flows are what let the controller see each new (source, destination, port): a
    coarse MAC-pair flow would carry a whole port scan past it after the first packet.
    """
    ip = view.ipv4
    base = FlowMatch(in_port=in_port, eth_src=view.eth.src, eth_dst=view.eth.dst,
                     eth_type=view.eth.ethertype)
    if ip is None or view.eth.ethertype != ETH_IPV4:
        return base
    return FlowMatch(in_port=in_port, eth_src=view.eth.src, eth_dst=view.eth.dst,
                     eth_type=ETH_IPV4, ip_proto=ip.proto, ipv4_src=ip.src, ipv4_dst=ip.dst,
                     **transport_match(ip.proto, ip.src_port, ip.dst_port, with_src=src_port))


ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})  # unreachable, quench, redirect, time, param
_QUOTED_PORTS = struct.Struct("!HH")


@dataclass(frozen=True)
class QuotedHeader:
    """The IPv4 header (and first ports) an ICMP error quotes: the packet that caused it.

    offset: where the quoted IPv4 header starts in the frame.
    """

    offset: int
    src: str
    dst: str
    proto: int
    src_port: int | None
    dst_port: int | None


def icmp_quoted(frame: bytes) -> QuotedHeader | None:
    """The quoted header of an Ethernet/IPv4 ICMP error, or None (not an error, truncated)."""
    if len(frame) < ETH_HEADER_BYTES + _IPV4.size:
        return None
    outer_len = (frame[ETH_HEADER_BYTES] & 0x0F) * 4
    icmp_at = ETH_HEADER_BYTES + outer_len
    inner_at = icmp_at + 8
    if (len(frame) < inner_at + _IPV4.size or frame[ETH_HEADER_BYTES + 9] != PROTO_ICMP
            or frame[icmp_at] not in ICMP_ERROR_TYPES):
        return None
    inner = _parse_ipv4(frame[inner_at:])
    if inner is None:
        return None
    return QuotedHeader(inner_at, inner.src, inner.dst, inner.proto, inner.src_port,
                        inner.dst_port)


def _adjust(csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 incremental update of a ones'-complement checksum for a 4-byte change."""
    total = ~csum & 0xFFFF
    for i in (0, 2):
        total += (~struct.unpack_from("!H", old, i)[0] & 0xFFFF)
        total += struct.unpack_from("!H", new, i)[0]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rewrite_icmp_error(frame: bytes, src_mac: str, src_ip: str, quoted_dst: str) -> bytes:
    """The ICMP error ``frame`` as the virtual side must see it: Ethernet source ``src_mac``,
    outer IPv4 source ``src_ip``, and the quoted header's destination ``quoted_dst``; the outer
    IPv4, quoted IPv4, quoted TCP/UDP (when it is all there) and ICMP checksums fixed.

    Raises ValueError when ``frame`` is not an ICMP error (:func:`icmp_quoted` is None)."""
    quoted = icmp_quoted(frame)
    if quoted is None:
        raise ValueError("not an Ethernet/IPv4 ICMP error")
    out = bytearray(frame)
    out[6:12] = _mac_bytes(src_mac)
    ip_at = ETH_HEADER_BYTES
    outer_len = (out[ip_at] & 0x0F) * 4
    out[ip_at + 12:ip_at + 16] = ipaddress.IPv4Address(src_ip).packed
    out[ip_at + 10:ip_at + 12] = b"\x00\x00"
    struct.pack_into("!H", out, ip_at + 10, internet_checksum(bytes(out[ip_at:ip_at + outer_len])))
    inner_at = quoted.offset
    inner_len = (out[inner_at] & 0x0F) * 4
    old_dst = bytes(out[inner_at + 16:inner_at + 20])
    new_dst = ipaddress.IPv4Address(quoted_dst).packed
    out[inner_at + 16:inner_at + 20] = new_dst
    out[inner_at + 10:inner_at + 12] = b"\x00\x00"
    struct.pack_into("!H", out, inner_at + 10,
                     internet_checksum(bytes(out[inner_at:inner_at + inner_len])))
    l4 = inner_at + inner_len
    csum_at = {PROTO_TCP: l4 + 16, PROTO_UDP: l4 + 6}.get(quoted.proto)
    if csum_at is not None and len(out) >= csum_at + 2:
        old_csum = struct.unpack_from("!H", out, csum_at)[0]
        if not (quoted.proto == PROTO_UDP and old_csum == 0):  # 0: no UDP checksum
            struct.pack_into("!H", out, csum_at, _adjust(old_csum, old_dst, new_dst))
    icmp_at = ip_at + outer_len
    total = struct.unpack_from("!H", out, ip_at + 2)[0]
    icmp_end = min(len(out), ip_at + total)
    out[icmp_at + 2:icmp_at + 4] = b"\x00\x00"
    struct.pack_into("!H", out, icmp_at + 2, internet_checksum(bytes(out[icmp_at:icmp_end])))
    return bytes(out)


def icmp_echo_reply_frame(frame: bytes, src_mac: str) -> bytes:
    """The echo reply to the Ethernet/IPv4 ICMP echo request ``frame``, as a host at the
    request's destination IP with MAC ``src_mac`` sends it: addresses swapped, TTL 64, same
    identifier, sequence and payload, checksums fixed, Ethernet padding dropped.

    Raises ValueError when ``frame`` is not a whole, unfragmented echo request."""
    view = parse_packet(frame)
    ip = view.ipv4
    if ip is None or ip.proto != PROTO_ICMP or ip.icmp_type != ICMP_ECHO_REQUEST:
        raise ValueError("not an Ethernet/IPv4 ICMP echo request")
    ip_at = ETH_HEADER_BYTES
    header_bytes = (frame[ip_at] & 0x0F) * 4
    total, frag = struct.unpack_from("!H2xH", frame, ip_at + 2)
    if frag & 0x3FFF or len(frame) < ip_at + total or total < header_bytes + 8:
        raise ValueError("fragmented or truncated echo request")
    out = bytearray(frame[:ip_at + total])
    out[0:6], out[6:12] = frame[6:12], _mac_bytes(src_mac)
    out[ip_at + 12:ip_at + 16], out[ip_at + 16:ip_at + 20] = (frame[ip_at + 16:ip_at + 20],
                                                              frame[ip_at + 12:ip_at + 16])
    out[ip_at + 8] = 64
    out[ip_at + 10:ip_at + 12] = b"\x00\x00"
    struct.pack_into("!H", out, ip_at + 10,
                     internet_checksum(bytes(out[ip_at:ip_at + header_bytes])))
    icmp_at = ip_at + header_bytes
    out[icmp_at] = ICMP_ECHO_REPLY
    out[icmp_at + 2:icmp_at + 4] = b"\x00\x00"
    struct.pack_into("!H", out, icmp_at + 2, internet_checksum(bytes(out[icmp_at:])))
    return bytes(out)
