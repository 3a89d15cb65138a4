"""Pure core of the scan detector (no I/O, no OpenFlow framework).

Per source (its Ethernet address: an attacker hopping IP addresses keeps its MAC), the detector
keeps the distinct (destination IP, destination port) probes it saw in a sliding window. A probe
is a packet that opens a conversation: an ARP request (destination: the asked-for IP, no port),
a TCP SYN without ACK, a UDP datagram, an ICMP echo request. Replies (SYN-ACK, RST, echo reply)
never count, so a host answering a scan is never blamed for it. When a source exceeds
``max_dsts`` distinct destinations or ``max_ports`` distinct destination ports within
``window_s``, the core returns a :class:`Detection` and drop flows matching that source's MAC on
every switch, with a hard timeout of ``block_s``.

Granularity trade-off: the detector only sees what reaches the controller. With the learning
switch's MAC-pair flows a whole port scan of one host rides on the first packet's flow, so
:class:`DetectorSwitchCore` installs narrow flows instead (Ethernet pair + IPv4 pair + protocol
+ destination port; ARP is never cached in a flow). Cost: one packet-in and one flow per new
(source, destination, destination port) conversation and per reply port, i.e. a controller round
trip on each new TCP connection's first packet and larger flow tables; steady ICS polling (a
few long-lived connections) is unaffected.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from controllers.flowspec import NO_BUFFER, Decision, FlowMatch, FlowSpec, PacketResult
from controllers.l2_switch_core import LearningSwitchCore
from controllers.packets import (
    ARP_REQUEST,
    ETH_ARP,
    FrameError,
    PacketView,
    fine_match,
    parse_packet,
)
from controllers.pipeline import BLOCK_COOKIE, PRIORITY_BLOCK

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the scan detector.

    window_s: length of the sliding window. max_dsts / max_ports: a source with more distinct
    destination IPs / destination ports than this within the window is a scanner.
    block_s: hard timeout of the drop flows (and of the controller-side block).
    max_sources: bound on tracked sources (oldest forgotten first; MAC-flooding cannot grow
    controller memory without limit).
    exempt_macs: sources never blocked (empty by default: baseline traffic stays under the
    thresholds on its own, which the tests check).
    """

    window_s: float = 5.0
    max_dsts: int = 8
    max_ports: int = 12
    block_s: int = 60
    max_sources: int = 4096
    exempt_macs: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.max_dsts < 1 or self.max_ports < 1:
            raise ValueError("max_dsts and max_ports must be >= 1")
        if not 1 <= self.block_s <= 0xFFFF:
            raise ValueError(f"block_s must be 1..65535, got {self.block_s}")
        if self.max_sources < 1:
            raise ValueError(f"max_sources must be >= 1, got {self.max_sources}")


@dataclass(frozen=True)
class Detection:
    """One source found scanning. Times are on the caller's clock (``now_s``)."""

    t_s: float
    src_mac: str
    src_ip: str | None
    distinct_dsts: int
    distinct_ports: int
    threshold: str  # "max_dsts" or "max_ports"
    window_s: float
    block_s: int
    sample_dsts: tuple[str, ...]
    sample_ports: tuple[int, ...]

    def record(self) -> dict[str, Any]:
        """The JSON-ready fields of the detect log."""
        return {
            "src_mac": self.src_mac, "src_ip": self.src_ip,
            "distinct_dsts": self.distinct_dsts, "distinct_ports": self.distinct_ports,
            "threshold": self.threshold, "window_s": self.window_s, "block_s": self.block_s,
            "sample_dsts": list(self.sample_dsts), "sample_ports": list(self.sample_ports),
        }


def probe_of(view: PacketView) -> tuple[str, int | None] | None:
    """(destination IP, destination port or None) when ``view`` opens a conversation."""
    if view.arp is not None:
        arp = view.arp
        if arp.op == ARP_REQUEST and arp.tpa != arp.spa:  # gratuitous ARP is not a probe
            return arp.tpa, None
        return None
    ip = view.ipv4
    if ip is not None and ip.initiates:
        return ip.dst, ip.dst_port
    return None


def source_ip(view: PacketView) -> str | None:
    if view.arp is not None:
        return view.arp.spa
    return view.ipv4.src if view.ipv4 is not None else None


class ScanDetector:
    """Sliding-window distinct-destination counters per source MAC, and active blocks."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        # source MAC -> {(dst, port): last seen}; only distinct probes, so memory per source
        # stays bounded by the thresholds (a source is blocked once it exceeds them).
        self._seen: OrderedDict[str, dict[tuple[str, int | None], float]] = OrderedDict()
        self._blocked_until_s: dict[str, float] = {}
        self.detections: list[Detection] = []

    def is_blocked(self, mac: str, now_s: float) -> bool:
        until = self._blocked_until_s.get(mac)
        if until is None:
            return False
        if now_s >= until:
            del self._blocked_until_s[mac]
            return False
        return True

    def active_blocks(self, now_s: float) -> dict[str, float]:
        """Blocked MAC -> seconds of block left."""
        return {mac: until - now_s for mac, until in self._blocked_until_s.items()
                if until > now_s}

    def observe(self, view: PacketView, now_s: float) -> Detection | None:
        """Count ``view`` if it is a probe; a Detection when its source crosses a threshold."""
        probe = probe_of(view)
        mac = view.eth.src
        if probe is None or mac in self.config.exempt_macs or self.is_blocked(mac, now_s):
            return None
        cfg = self.config
        seen = self._seen.setdefault(mac, {})
        self._seen.move_to_end(mac)
        while len(self._seen) > cfg.max_sources:
            self._seen.popitem(last=False)
        horizon_s = now_s - cfg.window_s
        for key in [k for k, t in seen.items() if t < horizon_s]:
            del seen[key]
        seen[probe] = now_s
        dsts = {dst for dst, _ in seen}
        ports = {port for _, port in seen if port is not None}
        if len(dsts) > cfg.max_dsts:
            threshold = "max_dsts"
        elif len(ports) > cfg.max_ports:
            threshold = "max_ports"
        else:
            return None
        detection = Detection(
            t_s=now_s, src_mac=mac, src_ip=source_ip(view), distinct_dsts=len(dsts),
            distinct_ports=len(ports), threshold=threshold, window_s=cfg.window_s,
            block_s=cfg.block_s, sample_dsts=tuple(sorted(dsts))[:16],
            sample_ports=tuple(sorted(ports))[:16])
        self._blocked_until_s[mac] = now_s + cfg.block_s
        del self._seen[mac]
        self.detections.append(detection)
        LOG.info("scan detected src_mac=%s src_ip=%s dsts=%d ports=%d threshold=%s",
                 mac, detection.src_ip, len(dsts), len(ports), threshold)
        return detection

    def reconnect_flows(self, dpid: int, now_s: float) -> tuple[FlowSpec, ...]:
        """The blocks still active, for a switch that (re)connects: it keeps them."""
        return tuple(flow for mac, left_s in self.active_blocks(now_s).items()
                     for flow in self.block_flows(mac, (dpid,), int(left_s) + 1))

    def block_flows(self, mac: str, dpids: tuple[int, ...], block_s: int) -> tuple[FlowSpec, ...]:
        """Drop everything from ``mac`` on each switch for ``block_s`` seconds."""
        return tuple(FlowSpec(dpid=dpid, priority=PRIORITY_BLOCK, match=FlowMatch(eth_src=mac),
                              actions=(), hard_timeout_s=max(1, block_s), cookie=BLOCK_COOKIE)
                     for dpid in dpids)


def gate(detector: ScanDetector, view: PacketView, dpids: tuple[int, ...],
         now_s: float) -> PacketResult | None:
    """The detector's say on a packet: drop it (blocked source, or a new detection with block
    flows on every switch), or None to let the forwarding logic decide."""
    mac = view.eth.src
    if detector.is_blocked(mac, now_s):
        return PacketResult(Decision(reason="blocked"))
    detection = detector.observe(view, now_s)
    if detection is None:
        return None
    flows = detector.block_flows(mac, dpids, detection.block_s)
    return PacketResult(Decision(reason="scan_detected", flows=flows), detection)


def refine(decision: Decision, view: PacketView, in_port: int) -> Decision:
    """Make a learning-switch decision safe for per-conversation inspection: ARP is never
    cached in a flow (the controller sees every ARP), other flows get :func:`fine_match`."""
    if not decision.flows:
        return decision
    if view.arp is not None or view.eth.ethertype == ETH_ARP:
        return replace(decision, flows=())
    match = fine_match(in_port, view)
    return replace(decision, flows=tuple(replace(f, match=match) for f in decision.flows))


class DetectorSwitchCore:
    """Learning switch with narrow flows plus the scan detector in front of it."""

    def __init__(self, learning: LearningSwitchCore | None = None,
                 detector: ScanDetector | None = None) -> None:
        self.learning = learning or LearningSwitchCore()
        self.detector = detector or ScanDetector()

    def switch_connected(self, dpid: int, now_s: float) -> tuple[FlowSpec, ...]:
        """Table-miss flow, plus the blocks still active (a switch that reconnects keeps them)."""
        return self.learning.switch_connected(dpid) + self.detector.reconnect_flows(dpid, now_s)

    def switch_disconnected(self, dpid: int) -> None:
        self.learning.switch_disconnected(dpid)

    def packet_in(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                  buffer_id: int = NO_BUFFER) -> PacketResult:
        """Detector first, then the learning switch with narrow flows; never raises."""
        try:
            view = parse_packet(frame)
        except FrameError:
            return PacketResult(self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id))
        verdict = gate(self.detector, view, self.learning.dpids, now_s)
        if verdict is not None:
            return verdict
        decision = self.learning.packet_in(dpid, in_port, frame, now_s, buffer_id)
        return PacketResult(refine(decision, view, in_port))
