"""Pure core of the ``l2`` app (:mod:`controllers.l2_switch`): an OpenFlow 1.3 learning switch.

Naming: each app is a pair, ``<name>_core.py`` the pure core (no I/O, no OpenFlow framework)
and ``<name>.py`` the thin framework-facing app over :class:`controllers.app.CoreApp`; options
the launcher reads, when an app has some, are in ``<name>_options.py``.

One MAC table per datapath. :meth:`LearningSwitchCore.packet_in` takes the raw frame, the
ingress port and the time, and returns a :class:`~controllers.flowspec.Decision`: flows to add,
flows to delete, and the packet-out. Learned flows carry an idle timeout so state left by a
host that went quiet (or moved, or was spoofed) drains by itself.

The core reads only the Ethernet header (:func:`controllers.packets.parse_ethernet`, never the
framework's packet library). A frame the core cannot use is a counted error with a
``Decision`` whose ``reason`` says why; no exception leaves ``packet_in``.

Flooding uses OFPP_FLOOD (every port but the ingress one). That is loop-free on trees, which
is every shipped topology (star, linear, ics); a topology with a cycle needs a spanning tree
first, which this core does not compute.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from common.counters import counter_record
from controllers.flowspec import (
    CONTROLLER_MAX_LEN_NO_BUFFER,
    NO_BUFFER,
    PORT_CONTROLLER,
    PORT_FLOOD,
    PORT_LOCAL,
    PORT_MAX,
    Decision,
    FlowDelete,
    FlowMatch,
    FlowSpec,
    Output,
    PacketOut,
)
from controllers.packets import FrameError, is_group_mac, is_link_local_control, parse_ethernet
from controllers.pipeline import (
    ALL_COOKIE_BITS,
    LEARNED_COOKIE,
    PRIORITY_LEARNED,
    PRIORITY_TABLE_MISS,
)

LOG = logging.getLogger(__name__)

DPID_MAX = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class LearningConfig:
    """Tunables of the learning switch.

    flow_idle_timeout_s: learned flows expire after this long without a packet.
    flow_hard_timeout_s: learned flows expire this long after install; 0 = never.
    mac_ttl_s: a MAC table entry not refreshed for this long is forgotten.
    max_macs_per_switch: bound on each table (a MAC-flooding attacker evicts oldest entries
        instead of growing controller memory without limit).
    flow_priority: priority of learned flows (see :mod:`controllers.pipeline`).
    """

    flow_idle_timeout_s: int = 30
    flow_hard_timeout_s: int = 0
    mac_ttl_s: float = 300.0
    max_macs_per_switch: int = 4096
    flow_priority: int = PRIORITY_LEARNED

    def __post_init__(self) -> None:
        if not 0 < self.flow_idle_timeout_s <= 0xFFFF:
            raise ValueError(f"flow_idle_timeout_s must be 1..65535, got "
                             f"{self.flow_idle_timeout_s}")
        if not 0 <= self.flow_hard_timeout_s <= 0xFFFF:
            raise ValueError(f"flow_hard_timeout_s must be 0..65535, got "
                             f"{self.flow_hard_timeout_s}")
        if self.mac_ttl_s <= 0:
            raise ValueError(f"mac_ttl_s must be positive, got {self.mac_ttl_s}")
        if self.max_macs_per_switch < 1:
            raise ValueError(f"max_macs_per_switch must be >= 1, got {self.max_macs_per_switch}")
        if not PRIORITY_TABLE_MISS < self.flow_priority <= 0xFFFF:
            raise ValueError(f"flow_priority must be 1..65535, got {self.flow_priority}")


LearningStats = counter_record(
    "LearningStats",
    ("packet_ins", "parse_errors", "invalid_sources", "link_local_dropped", "same_port_dropped",
     "floods", "forwards", "flows_installed", "mac_moves", "mac_evictions"),
    "Counters since the core was created (not reset on switch reconnect).", __name__)


@dataclass(frozen=True)
class MacEntry:
    """Where a MAC was last seen on one switch."""

    port: int
    last_seen_s: float


def table_miss_flow(dpid: int) -> FlowSpec:
    """Lowest-priority catch-all: send whole packets (unbuffered) to the controller."""
    return FlowSpec(
        dpid=dpid,
        priority=PRIORITY_TABLE_MISS,
        match=FlowMatch(),
        actions=(Output(PORT_CONTROLLER, CONTROLLER_MAX_LEN_NO_BUFFER),),
    )


def _valid_dpid(dpid: object) -> bool:
    return isinstance(dpid, int) and not isinstance(dpid, bool) and 0 <= dpid <= DPID_MAX


def _valid_port(port: object) -> bool:
    return (isinstance(port, int) and not isinstance(port, bool)
            and (1 <= port <= PORT_MAX or port == PORT_LOCAL))


class LearningSwitchCore:
    """Per-datapath MAC learning; every answer is plain data (see module docstring)."""

    def __init__(self, config: LearningConfig | None = None) -> None:
        self.config = config or LearningConfig()
        self.stats = LearningStats()
        self._tables: dict[int, OrderedDict[str, MacEntry]] = {}

    # --- switch lifecycle ----------------------------------------------------------------
    def switch_connected(self, dpid: int, now_s: float = 0.0) -> tuple[FlowSpec, ...]:
        """Start a fresh table for ``dpid``; returns the flows to install on it.

        now_s: unused (a fresh table holds nothing timed); taken as every core takes it.
        """
        self._tables[dpid] = OrderedDict()
        return (table_miss_flow(dpid),)

    def switch_disconnected(self, dpid: int) -> None:
        """Forget what was learned on ``dpid`` (its flows are gone or stale)."""
        self._tables.pop(dpid, None)

    @property
    def dpids(self) -> tuple[int, ...]:
        return tuple(self._tables)

    # --- MAC table -----------------------------------------------------------------------
    def lookup(self, dpid: int, mac: str, now_s: float) -> int | None:
        """The port ``mac`` was learned on at ``dpid``, or None if unknown or expired."""
        table = self._tables.get(dpid)
        if table is None:
            return None
        entry = table.get(mac)
        if entry is None:
            return None
        if now_s - entry.last_seen_s > self.config.mac_ttl_s:
            del table[mac]
            return None
        return entry.port

    def table(self, dpid: int) -> dict[str, MacEntry]:
        """A copy of the MAC table of ``dpid`` (expired entries included until looked up)."""
        return dict(self._tables.get(dpid, {}))

    def _learn(self, dpid: int, mac: str, port: int, now_s: float) -> tuple[FlowDelete, ...]:
        table = self._tables.setdefault(dpid, OrderedDict())
        old = table.get(mac)
        table[mac] = MacEntry(port=port, last_seen_s=now_s)
        table.move_to_end(mac)
        if old is not None:
            if old.port == port or now_s - old.last_seen_s > self.config.mac_ttl_s:
                return ()
            # The MAC moved (a host moved, or someone spoofs it): flows steering traffic to
            # the old port would black-hole it until they idle out, so remove them now.
            self.stats.mac_moves += 1
            LOG.info("mac moved dpid=%016x mac=%s port %d -> %d", dpid, mac, old.port, port)
            return (
                FlowDelete(dpid, FlowMatch(eth_dst=mac), LEARNED_COOKIE, ALL_COOKIE_BITS),
                FlowDelete(dpid, FlowMatch(eth_src=mac), LEARNED_COOKIE, ALL_COOKIE_BITS),
            )
        while len(table) > self.config.max_macs_per_switch:
            evicted, _ = table.popitem(last=False)
            self.stats.mac_evictions += 1
            LOG.debug("mac table full dpid=%016x evicted=%s", dpid, evicted)
        return ()

    # --- packets -------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, frame: bytes, now_s: float,
                  buffer_id: int = NO_BUFFER) -> Decision:
        """Learn from one packet-in and say what to do with it; never raises on bad input.

        dpid, in_port: where the frame entered. frame: the frame bytes as received.
        now_s: the current time in seconds (any monotonic clock). buffer_id: the switch's
        buffer holding the packet, or NO_BUFFER when ``frame`` is the whole packet.
        """
        self.stats.packet_ins += 1
        try:
            header = parse_ethernet(frame)
        except FrameError as exc:
            return self._parse_error(dpid, in_port, str(exc))
        if not _valid_dpid(dpid) or not _valid_port(in_port):
            return self._parse_error(dpid, in_port, "invalid dpid or ingress port")
        if not isinstance(buffer_id, int) or not 0 <= buffer_id <= NO_BUFFER:
            return self._parse_error(dpid, in_port, f"invalid buffer id {buffer_id!r}")
        if is_group_mac(header.src) or header.src == "00:00:00:00:00:00":
            self.stats.invalid_sources += 1
            return Decision(reason="invalid_source")
        if is_link_local_control(header.dst):
            self.stats.link_local_dropped += 1
            return Decision(reason="link_local")

        deletes = self._learn(dpid, header.src, in_port, now_s)
        data = bytes(frame) if buffer_id == NO_BUFFER else b""
        out_port = None if is_group_mac(header.dst) else self.lookup(dpid, header.dst, now_s)

        if out_port is None:
            self.stats.floods += 1
            return Decision(
                reason="flood",
                deletes=deletes,
                packet_out=PacketOut(dpid, in_port, (Output(PORT_FLOOD),), data, buffer_id),
            )
        if out_port == in_port:
            # Destination sits behind the port the frame came from (a hub or a stale
            # entry): sending it back would duplicate it, so drop as a real switch does.
            self.stats.same_port_dropped += 1
            return Decision(reason="same_port", deletes=deletes)

        cfg = self.config
        flow = FlowSpec(
            dpid=dpid,
            priority=cfg.flow_priority,
            match=FlowMatch(in_port=in_port, eth_src=header.src, eth_dst=header.dst),
            actions=(Output(out_port),),
            idle_timeout_s=cfg.flow_idle_timeout_s,
            hard_timeout_s=cfg.flow_hard_timeout_s,
            cookie=LEARNED_COOKIE,
        )
        self.stats.forwards += 1
        self.stats.flows_installed += 1
        return Decision(
            reason="forward",
            deletes=deletes,
            flows=(flow,),
            packet_out=PacketOut(dpid, in_port, (Output(out_port),), data, buffer_id),
        )

    def _parse_error(self, dpid: object, in_port: object, why: str) -> Decision:
        self.stats.parse_errors += 1
        LOG.debug("unusable packet-in dpid=%r in_port=%r: %s", dpid, in_port, why)
        return Decision(reason="parse_error")
