"""The scan detector's pure core and the header parser it relies on (no controller needed)."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.detector_core import (
    DetectorConfig,
    DetectorSwitchCore,
    ScanDetector,
    probe_of,
)
from controllers.detector_options import add_arguments, settings_from_args
from controllers.flowspec import NO_BUFFER
from controllers.packets import (
    ARP_REPLY,
    ETH_ARP,
    ETH_IPV4,
    PROTO_TCP,
    TCP_FLAG_ACK,
    TCP_FLAG_SYN,
    FrameError,
    arp_reply_frame,
    fine_match,
    parse_packet,
)
from controllers.pipeline import BLOCK_COOKIE, PRIORITY_BLOCK
from tests.support.frames import arp_request, ipv4

ATTACKER_MAC = "02:00:00:00:00:42"
HMI_MAC = "02:00:00:00:00:0b"
PLC1_MAC = "02:00:00:00:00:15"


# --- headers -------------------------------------------------------------------------------------
def test_parse_arp_and_tcp_and_reply_roundtrip() -> None:
    view = parse_packet(arp_request(ATTACKER_MAC, "10.0.0.66", "10.0.0.21"))
    assert view.arp is not None and (view.arp.op, view.arp.spa, view.arp.tpa) == (
        1, "10.0.0.66", "10.0.0.21")
    reply = parse_packet(arp_reply_frame("06:00:0a:00:00:64", "10.0.0.100", ATTACKER_MAC,
                                         "10.0.0.66"))
    assert reply.eth.dst == ATTACKER_MAC and reply.eth.src == "06:00:0a:00:00:64"
    assert reply.arp is not None and reply.arp.op == ARP_REPLY
    assert (reply.arp.sha, reply.arp.spa, reply.arp.tpa) == ("06:00:0a:00:00:64", "10.0.0.100",
                                                             "10.0.0.66")
    tcp = parse_packet(ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21", sport=41000))
    assert tcp.ipv4 is not None
    assert (tcp.ipv4.src_port, tcp.ipv4.dst_port, tcp.ipv4.initiates) == (41000, 502, True)


def test_fine_match_carries_conversation_fields() -> None:
    view = parse_packet(ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21"))
    match = fine_match(3, view)
    assert match.fields() == {"in_port": 3, "eth_src": HMI_MAC, "eth_dst": PLC1_MAC,
                              "eth_type": ETH_IPV4, "ip_proto": PROTO_TCP,
                              "ipv4_src": "10.0.0.11", "ipv4_dst": "10.0.0.21", "tcp_dst": 502}
    arp = fine_match(3, parse_packet(arp_request(HMI_MAC, "10.0.0.11", "10.0.0.21")))
    assert arp.eth_type == ETH_ARP


def test_truncated_headers_degrade_to_plain_ethernet() -> None:
    full = ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21")
    assert parse_packet(full[:20]).ipv4 is None
    assert parse_packet(arp_request(HMI_MAC, "10.0.0.11", "10.0.0.1")[:30]).arp is None
    with pytest.raises(FrameError):
        parse_packet(b"\x00" * 5)


@settings(max_examples=300, deadline=500)
@given(st.binary(min_size=14, max_size=120))
def test_parser_never_raises_on_hostile_bytes(frame: bytes) -> None:
    parse_packet(frame)


# --- detector ------------------------------------------------------------------------------------
def test_replies_and_gratuitous_arp_are_not_probes() -> None:
    synack = parse_packet(ipv4(PLC1_MAC, ATTACKER_MAC, "10.0.0.21", "10.0.0.66", sport=502,
                               dport=40000, flags=TCP_FLAG_SYN | TCP_FLAG_ACK))
    assert probe_of(synack) is None
    assert probe_of(parse_packet(arp_request(HMI_MAC, "10.0.0.11", "10.0.0.11"))) is None
    assert probe_of(parse_packet(ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21",
                                      proto=17, dport=53))) == ("10.0.0.21", 53)
    assert probe_of(parse_packet(ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21",
                                      proto=1))) == ("10.0.0.21", None)


def test_host_sweep_detected_once_then_blocked_until_block_s() -> None:
    det = ScanDetector(DetectorConfig(window_s=5, max_dsts=4, max_ports=50, block_s=30))
    detections = []
    for i in range(1, 10):
        view = parse_packet(arp_request(ATTACKER_MAC, "10.0.0.66", f"10.0.0.{i}"))
        d = det.observe(view, now_s=100.0 + i * 0.1)
        if d is not None:
            detections.append(d)
    assert len(detections) == 1
    d = detections[0]
    assert (d.src_mac, d.src_ip, d.threshold, d.distinct_dsts) == (
        ATTACKER_MAC, "10.0.0.66", "max_dsts", 5)
    assert det.is_blocked(ATTACKER_MAC, 100.6 + 29.0)
    assert not det.is_blocked(ATTACKER_MAC, 100.5 + 30.0)
    flows = det.block_flows(ATTACKER_MAC, (1, 2), d.block_s)
    assert [(f.dpid, f.priority, f.actions, f.hard_timeout_s, f.cookie) for f in flows] == [
        (1, PRIORITY_BLOCK, (), 30, BLOCK_COOKIE), (2, PRIORITY_BLOCK, (), 30, BLOCK_COOKIE)]
    assert flows[0].match.fields() == {"eth_src": ATTACKER_MAC}


def test_port_scan_of_one_host_detected_by_ports() -> None:
    det = ScanDetector(DetectorConfig(window_s=5, max_dsts=8, max_ports=12))
    found = [det.observe(parse_packet(ipv4(ATTACKER_MAC, PLC1_MAC, "10.0.0.66", "10.0.0.21",
                                           dport=port)), now_s=port * 0.01)
             for port in range(1, 30)]
    hits = [d for d in found if d is not None]
    assert len(hits) == 1 and hits[0].threshold == "max_ports" and hits[0].distinct_ports == 13


def test_slow_probes_outside_the_window_never_trigger() -> None:
    det = ScanDetector(DetectorConfig(window_s=2, max_dsts=3, max_ports=3))
    for i in range(50):
        view = parse_packet(ipv4(ATTACKER_MAC, PLC1_MAC, "10.0.0.66", f"10.0.0.{i + 1}",
                                 dport=1000 + i))
        assert det.observe(view, now_s=i * 1.0) is None


@settings(max_examples=60, deadline=2000)
@given(period_s=st.floats(0.05, 2.0), reconnect_every=st.integers(1, 50),
       duration_s=st.floats(10.0, 120.0))
def test_hmi_polling_baseline_never_triggers(period_s: float, reconnect_every: int,
                                             duration_s: float) -> None:
    """The HMI polls both PLCs on 502, reconnecting at any rate: 2 destinations, 1 port."""
    det = ScanDetector()
    t_s, n, sport = 0.0, 0, 40000
    while t_s < duration_s:
        for plc_ip, plc_mac in (("10.0.0.21", PLC1_MAC), ("10.0.0.22", "02:00:00:00:00:16")):
            if n % reconnect_every == 0:
                sport += 1
                assert det.observe(parse_packet(arp_request(HMI_MAC, "10.0.0.11", plc_ip)),
                                   t_s) is None
                syn = ipv4(HMI_MAC, plc_mac, "10.0.0.11", plc_ip, sport=sport)
                assert det.observe(parse_packet(syn), t_s) is None
        n += 1
        t_s += period_s
    assert not det.detections


def test_switch_core_blocks_on_every_switch_and_reinstalls_on_reconnect() -> None:
    core = DetectorSwitchCore(detector=ScanDetector(DetectorConfig(max_dsts=2, block_s=20)))
    for dpid in (1, 2):
        core.switch_connected(dpid, 0.0)
    results = [core.packet_in(1, 4, arp_request(ATTACKER_MAC, "10.0.0.66", f"10.0.0.{i}"),
                              1.0 + i * 0.01) for i in (1, 2, 3)]
    assert [r.decision.reason for r in results][-1] == "scan_detected"
    assert results[-1].detection is not None
    assert {f.dpid for f in results[-1].decision.flows} == {1, 2}
    blocked = core.packet_in(1, 4, ipv4(ATTACKER_MAC, HMI_MAC, "10.0.0.66", "10.0.0.11"), 2.0)
    assert blocked.decision.reason == "blocked" and blocked.decision.dropped
    again = core.switch_connected(2, 11.0)
    blocks = [f for f in again if f.priority == PRIORITY_BLOCK]
    assert len(blocks) == 1 and 9 <= blocks[0].hard_timeout_s <= 11


def test_switch_core_installs_narrow_flows_and_never_caches_arp() -> None:
    core = DetectorSwitchCore()
    core.switch_connected(1, 0.0)
    core.packet_in(1, 2, arp_request(PLC1_MAC, "10.0.0.21", "10.0.0.11"), 0.0)  # learn PLC1
    arp = core.packet_in(1, 1, arp_request(HMI_MAC, "10.0.0.11", "10.0.0.21", PLC1_MAC), 0.1)
    assert arp.decision.reason == "forward" and arp.decision.flows == ()
    tcp = core.packet_in(1, 1, ipv4(HMI_MAC, PLC1_MAC, "10.0.0.11", "10.0.0.21"), 0.2,
                         NO_BUFFER)
    (flow,) = tcp.decision.flows
    assert flow.match.tcp_dst == 502 and flow.match.ipv4_dst == "10.0.0.21"


def test_cli_options_validate() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ok = settings_from_args(parser.parse_args(["--max-dsts", "3", "--detect-log", "d.jsonl"]))
    assert ok.config.max_dsts == 3 and ok.detect_log == "d.jsonl"
    with pytest.raises(ValueError, match="window_s"):
        settings_from_args(parser.parse_args(["--window-s", "0"]))
    with pytest.raises(ValueError, match="block_s"):
        settings_from_args(parser.parse_args(["--block-s", "0"]))
