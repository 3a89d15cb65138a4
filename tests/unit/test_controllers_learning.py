"""The learning-switch core against a simulated network of fake OpenFlow switches."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.plan import AddressPlan, ics_plan, linear_plan, star_plan
from controllers.flowspec import (
    CONTROLLER_MAX_LEN_NO_BUFFER,
    NO_BUFFER,
    PORT_CONTROLLER,
    PORT_FLOOD,
    Decision,
    FlowDelete,
    FlowMatch,
    FlowSpec,
    Output,
)
from controllers.l2_switch_core import LearningConfig, LearningSwitchCore
from controllers.packets import FrameError, parse_ethernet
from controllers.pipeline import LEARNED_COOKIE

BROADCAST = "ff:ff:ff:ff:ff:ff"
MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"
MAC_C = "02:00:00:00:00:03"
ETH_ARP = 0x0806
ETH_IPV4 = 0x0800


def frame(dst: str, src: str, ethertype: int = ETH_IPV4, payload: bytes = b"\x00" * 46) -> bytes:
    def raw(mac: str) -> bytes:
        return bytes(int(b, 16) for b in mac.split(":"))

    return raw(dst) + raw(src) + struct.pack("!H", ethertype) + payload


# --- a fake flow table and network ---------------------------------------------------------
class LoopDetectedError(AssertionError):
    """The simulated network kept forwarding one frame far longer than a tree allows."""


@dataclass
class FakeFlow:
    spec: FlowSpec
    last_used_s: float


@dataclass
class FakeSwitch:
    """An OpenFlow 1.3 table as the core's specs describe it (priority, match, idle expiry)."""

    dpid: int
    ports: set[int] = field(default_factory=set)
    flows: list[FakeFlow] = field(default_factory=list)

    def add(self, spec: FlowSpec, now_s: float) -> None:
        assert spec.dpid == self.dpid
        self.flows = [f for f in self.flows
                      if (f.spec.match, f.spec.priority) != (spec.match, spec.priority)]
        self.flows.append(FakeFlow(spec, now_s))

    def delete(self, spec: FlowDelete) -> None:
        def doomed(f: FakeFlow) -> bool:
            return (spec.match.covers(f.spec.match)
                    and f.spec.cookie & spec.cookie_mask == spec.cookie & spec.cookie_mask)

        self.flows = [f for f in self.flows if not doomed(f)]

    def expire(self, now_s: float) -> None:
        self.flows = [f for f in self.flows if not f.spec.idle_timeout_s
                      or now_s - f.last_used_s < f.spec.idle_timeout_s]

    def lookup(self, in_port: int, data: bytes, now_s: float) -> FlowSpec | None:
        hdr = parse_ethernet(data)
        pkt = FlowMatch(in_port=in_port, eth_src=hdr.src, eth_dst=hdr.dst, eth_type=hdr.ethertype)
        best = None
        for f in self.flows:
            if f.spec.match.covers(pkt) and (best is None or f.spec.priority > best.spec.priority):
                best = f
        if best is None:
            return None
        best.last_used_s = now_s
        return best.spec


class FakeNetwork:
    """Switches wired as an AddressPlan says; hosts send frames; the core answers packet-ins."""

    MAX_EVENTS = 10_000

    def __init__(self, plan: AddressPlan, core: LearningSwitchCore | None = None) -> None:
        self.core = core or LearningSwitchCore()
        self.now_s = 0.0
        self.switches: dict[int, FakeSwitch] = {}
        self.peer: dict[tuple[int, int], tuple[str, object]] = {}
        self.host_port: dict[str, tuple[int, int]] = {}
        self.mac: dict[str, str] = {}
        dpid_of = {s.name: int(s.dpid, 16) for s in plan.switches}
        for s in plan.switches:
            self.switches[dpid_of[s.name]] = FakeSwitch(dpid_of[s.name])
        for a, b in plan.trunks:
            pa, pb = self._new_port(dpid_of[a]), self._new_port(dpid_of[b])
            self.peer[(dpid_of[a], pa)] = ("switch", (dpid_of[b], pb))
            self.peer[(dpid_of[b], pb)] = ("switch", (dpid_of[a], pa))
        for h in plan.hosts:
            dpid = dpid_of[h.switch]
            port = self._new_port(dpid)
            self.peer[(dpid, port)] = ("host", h.name)
            self.host_port[h.name] = (dpid, port)
            self.mac[h.name] = h.mac
        for dpid, sw in self.switches.items():
            for spec in self.core.switch_connected(dpid):
                sw.add(spec, self.now_s)
        self.packet_ins = 0
        self.delivered: list[tuple[str, bytes]] = []

    def _new_port(self, dpid: int) -> int:
        ports = self.switches[dpid].ports
        port = len(ports) + 1
        ports.add(port)
        return port

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
        for sw in self.switches.values():
            sw.expire(self.now_s)

    def send(self, host: str, data: bytes) -> list[str]:
        """Inject ``data`` from ``host``; returns the hosts that received it, in order."""
        self.delivered = []
        queue: deque[tuple[int, int, bytes]] = deque([(*self.host_port[host], data)])
        events = 0
        while queue:
            events += 1
            if events > self.MAX_EVENTS:
                raise LoopDetectedError(f"frame still circulating after {events} hops")
            dpid, in_port, pkt = queue.popleft()
            sw = self.switches[dpid]
            flow = sw.lookup(in_port, pkt, self.now_s)
            if flow is None:
                continue  # no table-miss flow: dropped
            self._run_actions(sw, in_port, pkt, flow.actions, queue)
        return [name for name, _ in self.delivered]

    def _run_actions(self, sw: FakeSwitch, in_port: int, pkt: bytes, actions: tuple,
                     queue: deque) -> None:
        for action in actions:
            assert isinstance(action, Output)
            if action.port == PORT_CONTROLLER:
                self.packet_ins += 1
                decision = self.core.packet_in(sw.dpid, in_port, pkt, self.now_s)
                self.apply(sw, decision, queue)
            elif action.port == PORT_FLOOD:
                for port in sorted(sw.ports - {in_port}):
                    self._egress(sw.dpid, port, pkt, queue)
            else:
                assert action.port != in_port, "a switch never sends a frame back where it came"
                self._egress(sw.dpid, action.port, pkt, queue)

    def apply(self, sw: FakeSwitch, decision: Decision, queue: deque) -> None:
        for d in decision.deletes:
            self.switches[d.dpid].delete(d)
        for f in decision.flows:
            self.switches[f.dpid].add(f, self.now_s)
        out = decision.packet_out
        if out is not None:
            self._run_actions(self.switches[out.dpid], out.in_port, out.data, out.actions, queue)

    def _egress(self, dpid: int, port: int, pkt: bytes, queue: deque) -> None:
        kind, where = self.peer[(dpid, port)]
        if kind == "host":
            self.delivered.append((str(where), pkt))
        else:
            peer_dpid, peer_port = where  # type: ignore[misc]
            queue.append((peer_dpid, peer_port, pkt))


# --- the core on its own -------------------------------------------------------------------
def test_switch_connect_installs_unbuffered_table_miss() -> None:
    (flow,) = LearningSwitchCore().switch_connected(1)
    assert flow.priority == 0
    assert flow.match == FlowMatch()
    assert flow.actions == (Output(PORT_CONTROLLER, CONTROLLER_MAX_LEN_NO_BUFFER),)


def test_unknown_destination_floods_and_learns_source() -> None:
    core = LearningSwitchCore()
    core.switch_connected(1)
    d = core.packet_in(1, 1, frame(MAC_B, MAC_A), now_s=0.0)
    assert d.reason == "flood"
    assert d.packet_out is not None and d.packet_out.actions == (Output(PORT_FLOOD),)
    assert d.flows == ()
    assert core.lookup(1, MAC_A, now_s=0.0) == 1


def test_known_destination_installs_flow_with_idle_timeout() -> None:
    cfg = LearningConfig(flow_idle_timeout_s=7, flow_hard_timeout_s=60)
    core = LearningSwitchCore(cfg)
    core.switch_connected(1)
    core.packet_in(1, 1, frame(MAC_B, MAC_A), now_s=0.0)
    data = frame(MAC_A, MAC_B)
    d = core.packet_in(1, 2, data, now_s=1.0)
    assert d.reason == "forward"
    (flow,) = d.flows
    assert flow.match == FlowMatch(in_port=2, eth_src=MAC_B, eth_dst=MAC_A)
    assert flow.actions == (Output(1),)
    assert (flow.idle_timeout_s, flow.hard_timeout_s) == (7, 60)
    assert flow.cookie == LEARNED_COOKIE and flow.priority > 0
    assert d.packet_out is not None
    assert (d.packet_out.actions, d.packet_out.data) == ((Output(1),), data)


def test_buffered_packet_out_refers_to_buffer_not_data() -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 1, frame(MAC_B, MAC_A), now_s=0.0)
    d = core.packet_in(1, 2, frame(MAC_A, MAC_B), now_s=0.0, buffer_id=42)
    assert d.packet_out is not None
    assert (d.packet_out.buffer_id, d.packet_out.data) == (42, b"")


def test_tables_are_per_datapath() -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 3, frame(BROADCAST, MAC_A), now_s=0.0)
    assert core.lookup(1, MAC_A, 0.0) == 3
    assert core.lookup(2, MAC_A, 0.0) is None


def test_broadcast_is_always_flooded() -> None:
    core = LearningSwitchCore()
    for t in range(3):
        assert core.packet_in(1, 1, frame(BROADCAST, MAC_A, ETH_ARP), now_s=t).reason == "flood"


def test_destination_behind_ingress_port_is_dropped() -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 1, frame(BROADCAST, MAC_A), now_s=0.0)
    d = core.packet_in(1, 1, frame(MAC_A, MAC_B), now_s=0.0)
    assert d.reason == "same_port" and d.dropped
    assert core.stats.same_port_dropped == 1


def test_mac_entry_expires_after_ttl() -> None:
    core = LearningSwitchCore(LearningConfig(mac_ttl_s=10.0))
    core.packet_in(1, 1, frame(BROADCAST, MAC_A), now_s=0.0)
    assert core.packet_in(1, 2, frame(MAC_A, MAC_B), now_s=9.0).reason == "forward"
    assert core.packet_in(1, 2, frame(MAC_A, MAC_B), now_s=20.0).reason == "flood"


def test_mac_move_deletes_our_flows_for_that_mac() -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 1, frame(BROADCAST, MAC_A), now_s=0.0)
    d = core.packet_in(1, 4, frame(BROADCAST, MAC_A), now_s=1.0)
    assert core.lookup(1, MAC_A, 1.0) == 4
    assert core.stats.mac_moves == 1
    assert {x.match for x in d.deletes} == {FlowMatch(eth_dst=MAC_A), FlowMatch(eth_src=MAC_A)}
    assert all(x.cookie == LEARNED_COOKIE and x.cookie_mask for x in d.deletes)


def test_table_size_is_bounded_and_evicts_oldest() -> None:
    core = LearningSwitchCore(LearningConfig(max_macs_per_switch=2))
    for i, mac in enumerate((MAC_A, MAC_B, MAC_C)):
        core.packet_in(1, i + 1, frame(BROADCAST, mac), now_s=float(i))
    assert set(core.table(1)) == {MAC_B, MAC_C}
    assert core.stats.mac_evictions == 1


def test_switch_disconnect_forgets_its_table() -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 1, frame(BROADCAST, MAC_A), now_s=0.0)
    core.switch_disconnected(1)
    assert core.lookup(1, MAC_A, 0.0) is None
    assert core.dpids == ()


@pytest.mark.parametrize("bad", [
    b"", b"\x01", b"\x00" * 13, None, "not bytes", 12345,
])
def test_unusable_frames_are_counted_parse_errors(bad: object) -> None:
    core = LearningSwitchCore()
    d = core.packet_in(1, 1, bad, now_s=0.0)  # type: ignore[arg-type]
    assert d.reason == "parse_error" and d.dropped
    assert core.stats.parse_errors == 1


@pytest.mark.parametrize(("dpid", "in_port"), [(-1, 1), (1, 0), (1, -5), (1, 0xFFFFFFFB),
                                               (2**64, 1), (1, None), ("1", 1), (1, True)])
def test_bad_dpid_or_port_is_a_parse_error(dpid: object, in_port: object) -> None:
    core = LearningSwitchCore()
    d = core.packet_in(dpid, in_port, frame(BROADCAST, MAC_A), now_s=0.0)  # type: ignore[arg-type]
    assert d.reason == "parse_error"
    assert core.dpids == () or all(not core.table(x) for x in core.dpids)


@pytest.mark.parametrize("src", [BROADCAST, "01:00:5e:00:00:01", "00:00:00:00:00:00"])
def test_group_or_zero_source_is_not_learned(src: str) -> None:
    core = LearningSwitchCore()
    d = core.packet_in(1, 1, frame(MAC_A, src), now_s=0.0)
    assert d.reason == "invalid_source" and d.dropped
    assert core.table(1) == {}


def test_link_local_control_frames_are_not_flooded() -> None:
    core = LearningSwitchCore()
    d = core.packet_in(1, 1, frame("01:80:c2:00:00:0e", MAC_A, 0x88CC), now_s=0.0)
    assert d.reason == "link_local" and d.dropped


def test_parse_ethernet_rejects_short_frame() -> None:
    with pytest.raises(FrameError):
        parse_ethernet(b"\xff" * 13)
    hdr = parse_ethernet(frame(BROADCAST, MAC_A, ETH_ARP))
    assert (hdr.dst, hdr.src, hdr.ethertype) == (BROADCAST, MAC_A, ETH_ARP)


def test_config_rejects_nonsense() -> None:
    for bad in ({"flow_idle_timeout_s": 0}, {"flow_hard_timeout_s": 70000},
                {"mac_ttl_s": 0}, {"max_macs_per_switch": 0}, {"flow_priority": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LearningConfig(**bad)  # type: ignore[arg-type]


@settings(deadline=200, max_examples=300, database=None)
@given(
    dpid=st.integers(min_value=-2, max_value=2**64 + 1),
    in_port=st.integers(min_value=-2, max_value=2**32 + 1),
    data=st.binary(max_size=80),
    buffer_id=st.one_of(st.just(NO_BUFFER), st.integers(min_value=-1, max_value=2**32)),
    now_s=st.floats(min_value=0, max_value=1e9),
)
def test_fuzz_packet_in_never_raises_and_never_reflects(dpid: int, in_port: int, data: bytes,
                                                        buffer_id: int, now_s: float) -> None:
    core = LearningSwitchCore()
    core.packet_in(1, 1, frame(BROADCAST, MAC_A), now_s=0.0)
    d = core.packet_in(dpid, in_port, data, now_s=now_s, buffer_id=buffer_id)
    assert isinstance(d, Decision)
    if d.packet_out is not None:
        assert all(a.port != in_port for a in d.packet_out.actions)  # type: ignore[union-attr]
    assert all(f.idle_timeout_s > 0 for f in d.flows)
    assert core.stats.packet_ins == 2


# --- the core driving a simulated network ----------------------------------------------------
SHIPPED_PLANS = {
    "star": star_plan(6),
    "linear": linear_plan(5),
    "ics": ics_plan(),
}


@pytest.mark.parametrize("name", SHIPPED_PLANS)
def test_broadcast_reaches_every_other_host_exactly_once(name: str) -> None:
    plan = SHIPPED_PLANS[name]
    net = FakeNetwork(plan)
    first = plan.hosts[0].name
    got = net.send(first, frame(BROADCAST, net.mac[first], ETH_ARP))
    assert sorted(got) == sorted(h.name for h in plan.hosts if h.name != first)
    assert net.packet_ins == len(plan.switches)  # once per switch: no loop, no storm


@pytest.mark.parametrize("name", SHIPPED_PLANS)
def test_all_pairs_delivered_once_then_served_by_flows(name: str) -> None:
    plan = SHIPPED_PLANS[name]
    net = FakeNetwork(plan)
    names = [h.name for h in plan.hosts]
    for h in names:  # everyone announces itself (like the ARP requests of a ping sweep)
        net.send(h, frame(BROADCAST, net.mac[h], ETH_ARP))
    for src in names:
        for dst in names:
            if src != dst:
                assert net.send(src, frame(net.mac[dst], net.mac[src])) == [dst]
    before = net.packet_ins
    for src in names:
        for dst in names:
            if src != dst:
                assert net.send(src, frame(net.mac[dst], net.mac[src])) == [dst]
    assert net.packet_ins == before, "second round must be forwarded by installed flows"


def test_linear_chain_flows_idle_out_and_traffic_recovers() -> None:
    plan = linear_plan(4)
    net = FakeNetwork(plan, LearningSwitchCore(LearningConfig(flow_idle_timeout_s=5)))
    a, b = net.mac["h1"], net.mac["h4"]
    net.send("h1", frame(BROADCAST, a, ETH_ARP))
    net.send("h4", frame(a, b))
    assert net.send("h1", frame(b, a)) == ["h4"]
    learned = sum(len(sw.flows) for sw in net.switches.values())
    assert learned > len(plan.switches)  # table-miss flows plus learned ones
    net.advance(6.0)
    assert sum(len(sw.flows) for sw in net.switches.values()) == len(plan.switches)
    before = net.packet_ins
    assert net.send("h1", frame(b, a)) == ["h4"]
    assert net.packet_ins > before  # went back to the controller, and still arrived once


def test_linear_chain_host_move_is_followed() -> None:
    plan = linear_plan(3)
    net = FakeNetwork(plan)
    a, c = net.mac["h1"], net.mac["h3"]
    net.send("h1", frame(BROADCAST, a, ETH_ARP))
    net.send("h3", frame(a, c))
    assert net.send("h1", frame(c, a)) == ["h3"]
    # h3's MAC now shows up at h2's port (a move or a spoof): traffic must follow it.
    net.send("h2", frame(BROADCAST, c, ETH_ARP))
    assert net.send("h1", frame(c, a)) == ["h2"]
