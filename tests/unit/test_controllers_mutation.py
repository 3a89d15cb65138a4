"""The random-host-mutation core without a controller: schedule, collisions, ARP policy,
per-flow mappings across hops, and the app options through the launcher."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.hopschedule import (
    HopSchedule,
    MutationConfig,
    MutationError,
    schedule_events,
    virtual_mac,
)
from common.plan import AddressPlan, HostSpec, SwitchSpec, ics_plan, star_plan
from controllers import __main__ as launcher
from controllers import registry
from controllers.flowspec import PORT_CONTROLLER, SetField
from controllers.packets import ARP_REPLY, ArpHeader, parse_packet
from controllers.pipeline import PRIORITY_MAPPED, PRIORITY_REAL_DROP, PRIORITY_STALE_DROP
from controllers.rhm_core import RhmCore
from controllers.rhm_options import add_arguments, settings_from_args
from tests.support.frames import arp_request, ipv4

PLAN = ics_plan()
HMI = PLAN.host("hmi")
ATTACKER = PLAN.host("attacker")
PLC1 = PLAN.host("plc1")
S1, S2 = 1, 2
# Ports of the ics topology (PLAN.edge_ports(): trunks first; trust is bound to them).
S1_TRUNK, S1_HMI, S1_ATTACKER = 1, 2, 5
S2_TRUNK, S2_PLC1 = 1, 2


def core_with_switches(config: MutationConfig | None = None) -> RhmCore:
    core = RhmCore(PLAN, config or MutationConfig(hop_interval_s=5, seed=3), now_s=0.0)
    core.switch_connected(S1, 0.0)
    core.switch_connected(S2, 0.0)
    # PLC1 talked to the HMI already: its MAC is known on both switches.
    frame = ipv4(PLC1.mac, HMI.mac, PLC1.ip, HMI.ip, sport=502, dport=40000, flags=0x12)
    core.learning.packet_in(S2, S2_PLC1, frame, 0.0)
    core.learning.packet_in(S1, S1_TRUNK, frame, 0.0)
    return core


# --- schedule ------------------------------------------------------------------------------
def test_same_seed_same_sequence_whatever_the_tick_rate() -> None:
    cfg = MutationConfig(hop_interval_s=2.0, jitter_s=0.5, seed=11)
    coarse = schedule_events(PLAN, cfg, until_s=60.0)
    fine = HopSchedule(PLAN.protected, PLAN.virtual_pool, cfg)
    events = list(fine.initial)
    for i in range(1, 601):
        events += fine.pop_due(i * 0.1)
    assert events == coarse
    assert schedule_events(PLAN, MutationConfig(hop_interval_s=2.0, jitter_s=0.5, seed=12),
                           60.0) != coarse
    gaps = [b.t_s - a.t_s for a, b in zip(coarse, coarse[2:], strict=False)
            if a.host == b.host]
    assert all(1.5 - 1e-9 <= g <= 2.5 + 1e-9 for g in gaps if g > 0)


@settings(max_examples=80, deadline=2000)
@given(seed=st.integers(0, 2**32), interval_s=st.floats(0.5, 10.0),
       jitter_frac=st.floats(0.0, 0.9), idle_s=st.integers(1, 30),
       n_hosts=st.integers(2, 30))
def test_no_collisions_and_quarantine_respected(seed: int, interval_s: float,
                                                jitter_frac: float, idle_s: int,
                                                n_hosts: int) -> None:
    plan = star_plan(n_hosts)
    protected = tuple(HostSpec(h.name, "plc", h.ip, h.mac, h.switch, protected=True)
                      for h in plan.hosts[: n_hosts // 2 + 1])
    plan = AddressPlan(plan.name, plan.subnet, protected + plan.hosts[len(protected):],
                       plan.switches, plan.trunks, plan.virtual_pool)
    cfg = MutationConfig(hop_interval_s=interval_s, jitter_s=interval_s * jitter_frac,
                         seed=seed, flow_idle_timeout_s=idle_s)
    real = {h.ip for h in plan.hosts}
    current: dict[str, str] = {}
    retired: dict[str, float] = {}
    quarantine_honoured = len(plan.virtual_pool) >= len(protected) * (
        2 + cfg.effective_quarantine_s / (interval_s * (1 - jitter_frac)))
    for ev in schedule_events(plan, cfg, until_s=20 * interval_s):
        assert ev.new_virtual not in real
        assert ev.new_virtual in plan.virtual_pool
        others = {v for h, v in current.items() if h != ev.host}
        assert ev.new_virtual not in others, f"{ev} collides"
        assert ev.new_virtual != ev.old_virtual
        if quarantine_honoured and ev.new_virtual in retired:
            assert ev.t_s - retired[ev.new_virtual] >= cfg.effective_quarantine_s - 1e-9
        if ev.old_virtual is not None:
            retired[ev.old_virtual] = ev.t_s
        current[ev.host] = ev.new_virtual


def test_pool_too_small_is_refused() -> None:
    plan = AddressPlan("p", "10.9.0.0/24",
                       (HostSpec("a", "plc", "10.9.0.1", "02:00:00:00:00:01", "s1",
                                 protected=True),),
                       (SwitchSpec("s1", "0000000000000001"),), virtual_pool=("10.9.0.100",))
    with pytest.raises(MutationError, match="too small"):
        HopSchedule(plan.protected, plan.virtual_pool, MutationConfig())
    with pytest.raises(MutationError, match="too small"):
        HopSchedule(plan.protected, ("10.9.0.1", "10.9.0.100"), MutationConfig())


def test_virtual_mac_is_local_unicast_and_per_address() -> None:
    mac = virtual_mac("10.0.0.100")
    assert mac == "02:00:00:00:00:64", "the real hosts' MAC space (plan.mac_for)"
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01
    assert virtual_mac("10.0.0.101") != mac


# --- ARP policy ----------------------------------------------------------------------------
def arp(src: HostSpec | tuple[str, str], target_ip: str, op: int = 1) -> tuple[ArpHeader, str]:
    mac, ip = (src.mac, src.ip) if isinstance(src, HostSpec) else src
    return ArpHeader(op, mac, ip, "00:00:00:00:00:00", target_ip), mac


def test_arp_policy() -> None:
    core = core_with_switches()
    v1 = core.current_virtual("plc1")
    verdict = core.arp_verdict(*arp(ATTACKER, PLC1.ip))
    assert verdict.action == "drop", "real address must not be answered to the attacker"
    spoofed = core.arp_verdict(*arp((ATTACKER.mac, HMI.ip), PLC1.ip))
    assert spoofed.action == "drop", "the HMI's IP with another MAC is not the HMI"
    trusted = core.arp_verdict(*arp(HMI, PLC1.ip))
    assert (trusted.action, trusted.answer_mac) == ("reply", PLC1.mac)
    virtual = core.arp_verdict(*arp(ATTACKER, v1))
    assert (virtual.action, virtual.answer_mac) == ("reply", virtual_mac(v1))
    real_mode = RhmCore(PLAN, MutationConfig(seed=3, arp_mac="real"), 0.0)
    assert real_mode.arp_verdict(*arp(ATTACKER, v1)).answer_mac == PLC1.mac
    unused = next(a for a in PLAN.virtual_pool if core.owner_of_virtual(a) is None)
    assert core.arp_verdict(*arp(ATTACKER, unused)).action == "drop"
    proxy = core.arp_verdict(*arp(PLC1, ATTACKER.ip))
    assert (proxy.action, proxy.answer_mac) == ("reply", ATTACKER.mac)
    assert core.arp_verdict(*arp(PLC1, "10.0.0.250")).action == "drop"
    assert core.arp_verdict(*arp(PLC1, HMI.ip, op=ARP_REPLY)).action == "drop"
    assert core.arp_verdict(*arp(ATTACKER, HMI.ip)).action == "forward"


def test_arp_answer_is_a_packet_out_to_the_asker_and_never_a_flood() -> None:
    core = core_with_switches()
    v1 = core.current_virtual("plc1")
    result = core.packet_in(S1, S1_ATTACKER, arp_request(ATTACKER.mac, ATTACKER.ip, v1), 1.0)
    out = result.decision.packet_out
    assert out is not None and out.actions[-1].port == S1_ATTACKER
    reply = parse_packet(out.data)
    assert reply.arp is not None and (reply.arp.spa, reply.arp.sha) == (v1, virtual_mac(v1))
    refused = core.packet_in(S1, S1_ATTACKER, arp_request(ATTACKER.mac, ATTACKER.ip, PLC1.ip),
                             1.0)
    assert refused.decision.dropped and not refused.decision.flows
    hmi = core.packet_in(S1, S1_HMI, arp_request(HMI.mac, HMI.ip, PLC1.ip), 1.0)
    assert hmi.decision.packet_out is not None
    assert parse_packet(hmi.decision.packet_out.data).arp.sha == PLC1.mac


# --- IPv4 ------------------------------------------------------------------------------------
def syn(src: HostSpec, dst_ip: str, dst_mac: str, sport: int = 40000) -> bytes:
    return ipv4(src.mac, dst_mac, src.ip, dst_ip, sport=sport, dport=502)


def test_unauthorized_to_real_address_is_dropped_by_flow_trusted_is_forwarded() -> None:
    core = core_with_switches()
    res = core.packet_in(S1, S1_ATTACKER, syn(ATTACKER, PLC1.ip, PLC1.mac), 1.0)
    assert res.decision.reason == "real_refused" and res.decision.dropped
    (drop,) = res.decision.flows
    assert drop.actions == () and drop.priority == PRIORITY_REAL_DROP
    assert drop.match.ipv4_dst == PLC1.ip and drop.match.ipv4_src == ATTACKER.ip
    ok = core.packet_in(S1, S1_HMI, syn(HMI, PLC1.ip, PLC1.mac), 1.0)
    assert ok.decision.reason == "forward"
    assert ok.decision.flows[0].match.tcp_dst == 502


def test_virtual_address_rewritten_at_edge_and_flows_kept_across_a_hop() -> None:
    core = core_with_switches(MutationConfig(hop_interval_s=5, seed=3, flow_idle_timeout_s=10))
    v1 = core.current_virtual("plc1")
    vmac = virtual_mac(v1)
    # s1 (not the PLC's edge): plain forward toward the PLC, exact conversation match.
    at_s1 = core.packet_in(S1, S1_ATTACKER, syn(ATTACKER, v1, vmac), 1.0).decision
    assert at_s1.reason == "virtual_forward"
    assert at_s1.flows[0].priority == PRIORITY_MAPPED and at_s1.flows[0].match.tcp_src == 40000
    # s2 (edge): rewrite toward the real address, and back.
    at_s2 = core.packet_in(S2, S2_TRUNK, syn(ATTACKER, v1, vmac), 1.0).decision
    assert at_s2.reason == "virtual_rewrite"
    forward, reverse = at_s2.flows
    assert SetField("ipv4_dst", PLC1.ip) in forward.actions
    assert SetField("eth_dst", PLC1.mac) in forward.actions
    assert forward.actions[-1].port == S2_PLC1 and forward.send_flow_removed
    assert SetField("ipv4_src", v1) in reverse.actions
    assert SetField("eth_src", vmac) in reverse.actions
    assert reverse.match.ipv4_src == PLC1.ip and reverse.match.tcp_src == 502
    assert reverse.actions[-1].port == S2_TRUNK
    assert SetField("ipv4_dst", PLC1.ip) in at_s2.packet_out.actions

    hops = core.tick(5.0)
    (hop,) = [h for h in hops if h.event.host == "plc1"]
    assert hop.event.old_virtual == v1 and hop.kept_flows == 1
    assert {f.dpid for f in hop.flows} == {S1, S2}
    stale = [f for f in hop.flows if f.priority == PRIORITY_STALE_DROP]
    assert {f.dpid for f in stale} == {S1, S2}
    assert all(f.match.ipv4_dst == v1 and f.actions == () for f in stale)
    assert PRIORITY_STALE_DROP < PRIORITY_MAPPED
    # The kept conversation's peer-to-host flows now send to the controller, above the drop.
    watch = [f for f in hop.flows if f not in stale]
    assert {f.dpid for f in watch} == {S1, S2} and all(f.match.tcp_src == 40000 for f in watch)
    assert all(f.priority == PRIORITY_MAPPED and f.actions[0].port == PORT_CONTROLLER
               for f in watch)
    dropped = [d for d in hop.deletes if d.match.ipv4_dst == v1]
    assert {d.match for d in dropped} == {f.match for f in watch}
    assert all(d.match.ipv4_dst == hop.event.new_virtual for d in hop.deletes
               if d not in dropped)
    # The established conversation still translates, packet by packet through the controller
    # (its peer-to-host flows were deleted at the hop) ...
    ack = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, sport=40000, dport=502, flags=0x10)
    again = core.packet_in(S2, S2_TRUNK, ack, 6.0).decision
    assert again.reason == "virtual_rewrite" and again.flows == ()
    assert SetField("ipv4_dst", PLC1.ip) in again.packet_out.actions
    at_s1_again = core.packet_in(S1, S1_ATTACKER, ack, 6.0).decision
    assert at_s1_again.reason == "retired_forward" and at_s1_again.flows == ()
    # ... but a new SYN on the same 5-tuple (a reused source port) is not.
    reused = core.packet_in(S2, S2_TRUNK, syn(ATTACKER, v1, vmac), 6.0).decision
    assert reused.reason == "stale_syn" and reused.dropped
    # ... and the ARP entry of its peer can be re-validated; a stranger gets nothing.
    assert core.arp_verdict(*arp(ATTACKER, v1)).action == "reply"
    assert core.arp_verdict(*arp(HMI, v1)).action == "drop"
    # A new conversation to the old address is dropped; the new address works.
    new = core.packet_in(S2, S2_TRUNK, syn(ATTACKER, v1, vmac, sport=40001), 6.0).decision
    assert new.reason == "stale_virtual" and new.dropped
    v2 = hop.event.new_virtual
    fresh = core.packet_in(S2, S2_TRUNK, syn(ATTACKER, v2, virtual_mac(v2), 40002), 6.0)
    assert fresh.decision.reason == "virtual_rewrite"
    # Once both edge flows idled out the mapping ends.
    core.flow_removed(forward.cookie)
    assert len(core.mappings) == 2
    core.flow_removed(reverse.cookie)
    assert len(core.mappings) == 1
    gone = core.packet_in(S2, S2_TRUNK, syn(ATTACKER, v1, vmac), 20.0).decision
    assert gone.reason == "stale_virtual"


def test_protected_host_talks_to_untrusted_only_from_its_virtual_address() -> None:
    core = core_with_switches()
    v1 = core.current_virtual("plc1")
    core.learning.packet_in(S2, S2_TRUNK, syn(ATTACKER, HMI.ip, HMI.mac), 0.5)  # attacker MAC
    frame = ipv4(PLC1.mac, ATTACKER.mac, PLC1.ip, ATTACKER.ip, sport=5000, dport=80)
    out = core.packet_in(S2, S2_PLC1, frame, 1.0).decision
    assert out.reason == "protected_rewrite"
    assert SetField("ipv4_src", v1) in out.packet_out.actions
    leak = core.packet_in(S1, S1_TRUNK, frame, 1.0).decision
    assert leak.reason == "leak_refused" and leak.dropped


def test_unmapped_mappings_expire_on_the_controller_clock() -> None:
    core = core_with_switches(MutationConfig(hop_interval_s=100, flow_idle_timeout_s=3))
    v1 = core.current_virtual("plc1")
    core.packet_in(S1, S1_ATTACKER, syn(ATTACKER, v1, virtual_mac(v1)), 1.0)
    assert len(core.mappings) == 1
    core.tick(3.5)
    assert len(core.mappings) == 1
    core.tick(5.1)
    assert core.mappings == ()


@settings(max_examples=300, deadline=500)
@given(st.binary(min_size=0, max_size=120), st.sampled_from([S1, S2]),
       st.integers(1, 6))
def test_hostile_frames_never_raise(frame: bytes, dpid: int, port: int) -> None:
    core = core_with_switches()
    core.packet_in(dpid, port, frame, 1.0)


@settings(max_examples=50, deadline=1000)
@given(st.integers(0, 255), st.integers(1, 65535), st.integers(1, 65535))
def test_attacker_never_gets_a_real_address_back(octet: int, sport: int, dport: int) -> None:
    """Whatever the attacker sends to .0-.255, nothing the core emits for it leaks a real
    protected address toward the attacker (packet-outs and flows only point at real addresses
    on the PLC side of the edge)."""
    core = core_with_switches()
    target = str(ipaddress.IPv4Address("10.0.0.0") + octet)
    frame = ipv4(ATTACKER.mac, "02:00:00:00:00:99", ATTACKER.ip, target, sport=sport,
                 dport=dport)
    decision = core.packet_in(S1, S1_ATTACKER, frame, 1.0).decision
    real = {h.ip for h in PLAN.protected}
    if target in real:
        assert decision.dropped
    for flow in decision.flows:
        for action in flow.actions:
            if isinstance(action, SetField) and action.value in real:
                assert action.name == "ipv4_dst" and flow.dpid == S2
    arp_result = core.packet_in(S1, S1_ATTACKER, arp_request(ATTACKER.mac, ATTACKER.ip, target),
                                1.0).decision
    if target in real:
        assert arp_result.dropped


# --- options through the launcher ------------------------------------------------------------
def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_settings_from_args(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    PLAN.save(plan_path)
    s = settings_from_args(parse(["--plan", str(plan_path), "--hop-interval-s", "2",
                                  "--seed", "9", "--jitter", "0.5", "--detector",
                                  "--max-dsts", "4", "--hop-log", "h.jsonl"]))
    assert (s.config.hop_interval_s, s.config.seed, s.config.jitter_s) == (2.0, 9, 0.5)
    assert s.detector is not None and s.detector.config.max_dsts == 4
    assert s.hop_log == "h.jsonl" and s.load_plan() == PLAN
    assert settings_from_args(parse([])).detector is None
    with pytest.raises(ValueError, match="jitter"):
        settings_from_args(parse(["--jitter-s", "5"]))
    with pytest.raises(ValueError, match="--plan"):
        settings_from_args(parse(["--plan", str(tmp_path / "missing.json")]))


def test_launcher_takes_app_options_and_refuses_them_for_other_apps(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = launcher.parse_args(["rhm", "--hop-interval-s", "2.5", "--seed", "4"])
    assert args.app == "rhm"
    assert registry.app_settings("rhm").config.hop_interval_s == 2.5
    assert launcher.main(["rhm", "--hop-interval-s", "-1"]) == 2
    assert "hop_interval_s" in capsys.readouterr().err
    assert launcher.main(["l2", "--hop-interval-s", "1"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    assert launcher.main(["detector", "--max-ports", "0"]) == 2
    assert "max_dsts and max_ports" in capsys.readouterr().err
