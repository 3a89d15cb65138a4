"""Plain data describing what a controller app wants the switches to do.

Pure cores return these; :mod:`controllers.ofmsg` turns them into OpenFlow 1.3 messages for a
connected datapath (priorities and cookies: :mod:`controllers.pipeline`). Nothing here imports
an OpenFlow framework, so cores and their tests do not need one. Port numbers and the
no-buffer id are the OpenFlow 1.3 wire values (spec section 7.2.1 and 7.3.4.1);
:mod:`controllers.ofmsg` checks them against the engine's ``ofproto``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

PORT_MAX = 0xFFFFFF00  # highest physical port number
PORT_IN_PORT = 0xFFFFFFF8
PORT_FLOOD = 0xFFFFFFFB  # all ports except the ingress port (and ports with no-flood set)
PORT_ALL = 0xFFFFFFFC
PORT_CONTROLLER = 0xFFFFFFFD
PORT_LOCAL = 0xFFFFFFFE  # the bridge's own port; a valid ingress port
PORT_ANY = 0xFFFFFFFF
NO_BUFFER = 0xFFFFFFFF
CONTROLLER_MAX_LEN_NO_BUFFER = 0xFFFF  # OFPCML_NO_BUFFER: send whole packet, do not buffer

MATCH_FIELD_ORDER = ("in_port", "eth_src", "eth_dst", "eth_type", "ip_proto", "ipv4_src",
                     "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "icmpv4_type")


@dataclass(frozen=True)
class FlowMatch:
    """OpenFlow match fields; ``None`` means wildcarded. MACs are lower-case ``aa:bb:..``.

    No ``tcp_flags``: Open vSwitch takes it in OpenFlow 1.3 (an ONF extension OXM), but with the
    userspace datapath a table holding a tcp_flags match broke every TCP connection through the
    switch (``datapath_drop_userspace_action_error``; issue 15), so no app uses it.
    """

    in_port: int | None = None
    eth_src: str | None = None
    eth_dst: str | None = None
    eth_type: int | None = None
    ipv4_src: str | None = None
    ipv4_dst: str | None = None
    ip_proto: int | None = None
    tcp_src: int | None = None
    tcp_dst: int | None = None
    udp_src: int | None = None
    udp_dst: int | None = None
    icmpv4_type: int | None = None

    def fields(self) -> dict[str, Any]:
        """The set fields as OFPMatch keyword arguments, in OXM-prerequisite order.

        OpenFlow prerequisites are the caller's job: ``ipv4_*`` needs ``eth_type=0x0800``,
        ``tcp_*``/``udp_*`` need ``ip_proto`` 6/17 (a switch rejects the flow otherwise).
        """
        return {name: getattr(self, name) for name in MATCH_FIELD_ORDER
                if getattr(self, name) is not None}

    def covers(self, other: FlowMatch) -> bool:
        """True when every packet matched by ``other`` is also matched by self."""
        return all(other.fields().get(k) == v for k, v in self.fields().items())


@dataclass(frozen=True)
class Output:
    """Send the packet out ``port``; ``max_len_bytes`` matters only for PORT_CONTROLLER."""

    port: int
    max_len_bytes: int = 0


@dataclass(frozen=True)
class SetField:
    """Rewrite one header field (``ipv4_dst``, ``eth_dst``...) to ``value``."""

    name: str
    value: str | int


Action = Output | SetField


@dataclass(frozen=True)
class FlowSpec:
    """A flow to add on one switch.

    idle_timeout_s / hard_timeout_s: 0 means never expires (OpenFlow semantics).
    cookie: lets an app later delete only its own flows.
    actions: an empty tuple drops the matched packets.
    send_flow_removed: ask the switch for a flow-removed message when the flow expires or is
        deleted (OFPFF_SEND_FLOW_REM).
    """

    dpid: int
    priority: int
    match: FlowMatch
    actions: tuple[Action, ...]
    idle_timeout_s: int = 0
    hard_timeout_s: int = 0
    cookie: int = 0
    table_id: int = 0
    send_flow_removed: bool = False


@dataclass(frozen=True)
class FlowDelete:
    """Delete flows on ``dpid`` whose match is covered by ``match`` and whose cookie matches.

    cookie_mask 0 means any cookie.
    """

    dpid: int
    match: FlowMatch
    cookie: int = 0
    cookie_mask: int = 0
    table_id: int = 0


@dataclass(frozen=True)
class PacketOut:
    """Send one packet out of ``dpid``.

    data: the whole frame when ``buffer_id`` is NO_BUFFER, else empty (the switch has it).
    """

    dpid: int
    in_port: int
    actions: tuple[Action, ...]
    data: bytes = b""
    buffer_id: int = NO_BUFFER


@dataclass(frozen=True)
class Decision:
    """Everything the controller should send in answer to one packet-in, in order.

    deletes go first, then flows, then the packet-out (so the packet follows the new flows).
    reason: a short machine-readable word for logs and counters (``forward``, ``flood``,
    ``parse_error``...).
    """

    reason: str
    deletes: tuple[FlowDelete, ...] = field(default=())
    flows: tuple[FlowSpec, ...] = field(default=())
    packet_out: PacketOut | None = None

    @property
    def dropped(self) -> bool:
        """True when the packet is not sent anywhere."""
        return self.packet_out is None


class Finding(Protocol):
    """Something a core found that the app records (the scan detector's Detection)."""

    def record(self) -> dict[str, Any]:
        """The JSON-ready fields of the app's log record."""
        ...


@dataclass(frozen=True)
class PacketResult:
    """A core's answer to one packet-in: the decision (its specs may target several switches,
    each spec names its dpid) and the detection it caused, if any."""

    decision: Decision
    detection: Finding | None = None
