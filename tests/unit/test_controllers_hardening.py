"""The rhm hardening (issue 15) on a fake datapath: trust bound to the port, the SYN guard and
UDP/ICMP conversations at a hop, ICMP errors with the quoted header rewritten, host-like
virtual MACs, the grace cut. The real network: tests/integration/test_defense_hardening.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether

from common.errors import UserError
from common.hopschedule import MutationConfig, virtual_mac
from common.plan import ics_plan, star_plan
from controllers.packets import icmp_quoted, rewrite_icmp_error
from controllers.pipeline import REFUSED_COOKIE, mapping_of_cookie
from controllers.port_trust import PortBinding
from controllers.rhm_core import RhmCore
from controllers.rhm_options import add_arguments, settings_from_args
from controllers.rhm_types import NO_HARDENING, Hardening
from lab.defenses import DefenseSettings, controller_setup
from lab.options import parse_options
from tests.support.frames import arp_request, ipv4
from tests.support.frames import eth as eth_frame
from topologies.base import PlanTopo

PLAN = ics_plan()
HMI, ATTACKER = PLAN.host("hmi"), PLAN.host("attacker")
PLC1 = PLAN.host("plc1")
S1, S2 = 1, 2
S1_TRUNK, S1_HMI, S1_ATTACKER = 1, 2, 5
S2_TRUNK, S2_PLC1 = 1, 2


def make_core(hardening: Hardening | None = None, **config: float) -> RhmCore:
    cfg = MutationConfig(**{"hop_interval_s": 5.0, "seed": 3, **config})
    core = RhmCore(PLAN, cfg, 0.0, hardening=hardening)
    for dpid in (S1, S2):
        core.switch_connected(dpid, 0.0)
    hello = ipv4(PLC1.mac, HMI.mac, PLC1.ip, HMI.ip, sport=502, dport=40000, flags=0x12)
    core.learning.packet_in(S2, S2_PLC1, hello, 0.0)
    core.learning.packet_in(S1, S1_TRUNK, hello, 0.0)
    back = ipv4(ATTACKER.mac, HMI.mac, ATTACKER.ip, HMI.ip, sport=1, dport=2, flags=0x10)
    core.learning.packet_in(S1, S1_ATTACKER, back, 0.0)
    core.learning.packet_in(S2, S2_TRUNK, back, 0.0)
    return core


def test_plan_ports_are_the_ports_mininet_gives_the_topology() -> None:
    for plan in (PLAN, star_plan(5)):
        topo = PlanTopo(plan)
        for name, (switch, port) in plan.edge_ports().items():
            assert topo.port(name, switch) == (0, port)
        for (a, b), ports in zip(plan.trunks, plan.trunk_ports(), strict=True):
            assert topo.port(a, b) == ports


def test_port_binding_only_on_the_hosts_own_port_or_a_trunk() -> None:
    binding = PortBinding(PLAN)
    assert binding.check(S1, S1_HMI, HMI.mac, HMI.ip, 0.0) is None
    assert binding.check(S2, S2_TRUNK, HMI.mac, HMI.ip, 0.0) is None
    assert binding.check(S1, S1_ATTACKER, ATTACKER.mac, ATTACKER.ip, 0.0) is None
    both = binding.check(S1, S1_ATTACKER, HMI.mac, HMI.ip, 2.0)
    assert both is not None and (both.host, both.claims, both.t_s) == ("hmi", "mac+ip", 2.0)
    ip_only = binding.check(S1, S1_ATTACKER, ATTACKER.mac, HMI.ip, 0.0)
    assert ip_only is not None and ip_only.claims == "ip"
    mac_only = binding.check(S1, S1_ATTACKER, PLC1.mac, "10.0.0.99", 0.0)
    assert mac_only is not None and (mac_only.host, mac_only.claims) == ("plc1", "mac")
    assert binding.check(S2, S2_PLC1, HMI.mac, HMI.ip, 0.0) is not None, "a host port of s2"


def test_spoofed_hmi_from_the_attackers_port_is_dropped_and_reported() -> None:
    core = make_core()
    spoof = ipv4(HMI.mac, PLC1.mac, HMI.ip, PLC1.ip)
    res = core.packet_in(S1, S1_ATTACKER, spoof, 1.0)
    assert res.decision.reason == "spoof_refused" and res.decision.dropped
    assert res.detection is not None and res.detection.record()["claims_host"] == "hmi"
    (drop,) = res.decision.flows
    assert drop.match.in_port == S1_ATTACKER and drop.match.eth_src == HMI.mac
    assert drop.cookie == REFUSED_COOKIE and drop.actions == ()
    assert core.learning.lookup(S1, HMI.mac, 1.0) != S1_ATTACKER, "MAC not learned there"
    arp = core.packet_in(S1, S1_ATTACKER, arp_request(HMI.mac, HMI.ip, PLC1.ip), 1.0)
    assert arp.decision.reason == "spoof_refused" and arp.decision.packet_out is None
    real = core.packet_in(S1, S1_HMI, spoof, 1.0).decision
    assert real.reason != "spoof_refused" and not real.dropped
    old = RhmCore(PLAN, MutationConfig(seed=3), 0.0, hardening=NO_HARDENING)
    old.switch_connected(S1, 0.0)
    assert old.packet_in(S1, S1_ATTACKER, spoof, 1.0).decision.reason != "spoof_refused"


def test_retired_address_keeps_established_tcp_but_refuses_new_syn_any_port() -> None:
    core = make_core()
    v1 = core.current_virtual("plc1")
    vmac = virtual_mac(v1)
    core.packet_in(S2, S2_TRUNK, ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1), 1.0)
    (hop,) = [h for h in core.tick(5.0) if h.event.host == "plc1"]
    assert hop.kept_flows == 1
    ack = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, flags=0x18)
    assert core.packet_in(S2, S2_TRUNK, ack, 6.0).decision.reason == "virtual_rewrite"
    for sport in (40000, 40001):
        syn = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, sport=sport)
        assert core.packet_in(S2, S2_TRUNK, syn, 6.0).decision.dropped


def test_udp_keeps_a_retired_address_only_when_seen_both_ways_icmp_never() -> None:
    core = make_core()
    v1 = core.current_virtual("plc1")
    vmac = virtual_mac(v1)
    one_way = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, proto=17, sport=5000, dport=161)
    first = core.packet_in(S2, S2_TRUNK, one_way, 1.0).decision
    assert [mapping_of_cookie(f.cookie)[1] for f in first.flows] == [0], "forward flow only"
    two_way = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, proto=17, sport=5001, dport=161)
    core.packet_in(S2, S2_TRUNK, two_way, 1.0)
    reply = ipv4(PLC1.mac, ATTACKER.mac, PLC1.ip, ATTACKER.ip, proto=17, sport=161,
                 dport=5001)
    back = core.packet_in(S2, S2_PLC1, reply, 1.1).decision
    assert back.reason == "protected_rewrite"
    ping = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, v1, proto=1)
    core.packet_in(S2, S2_TRUNK, ping, 1.2)
    assert len(core.mappings) == 3
    (hop,) = [h for h in core.tick(5.0) if h.event.host == "plc1"]
    assert hop.kept_flows == 1
    assert [m.key.peer_port for m in core.mappings] == [5001]
    ended = [mapping_of_cookie(d.cookie) for d in hop.deletes if d.cookie >> 32]
    assert len(ended) == 4, "both edge flows of the two ended conversations are deleted"


def test_grace_cut_ends_conversations_on_retired_addresses() -> None:
    core = make_core(Hardening(retired_grace_s=1.0))
    v1 = core.current_virtual("plc1")
    core.packet_in(S2, S2_TRUNK, ipv4(ATTACKER.mac, virtual_mac(v1), ATTACKER.ip, v1), 1.0)
    core.tick(5.0)
    assert core.cut_retired(5.5) == ()
    cut = core.cut_retired(6.0)
    assert len(cut) == 2 and core.mappings == () and core.stats.retired_cut == 1
    # The host's late FIN on the cut conversation must not leave from its new address.
    fin = ipv4(PLC1.mac, ATTACKER.mac, PLC1.ip, ATTACKER.ip, sport=502, dport=40000,
               flags=0x11)
    assert core.packet_in(S2, S2_PLC1, fin, 7.0).decision.reason == "orphan_refused"


def _icmp_error_from_plc(core: RhmCore, v1: str, sport: int) -> bytes:
    probe = (Ether(src=ATTACKER.mac, dst=virtual_mac(v1)) / IP(src=ATTACKER.ip, dst=v1)
             / UDP(sport=sport, dport=33434) / b"probe")
    core.packet_in(S2, S2_TRUNK, bytes(probe), 1.0)
    quoted = IP(src=ATTACKER.ip, dst=PLC1.ip) / UDP(sport=sport, dport=33434) / b"probe"
    error = (Ether(src=PLC1.mac, dst=ATTACKER.mac) / IP(src=PLC1.ip, dst=ATTACKER.ip)
             / ICMP(type=3, code=3) / bytes(quoted))
    return bytes(error)


def test_icmp_error_quote_is_rewritten_to_the_virtual_address_with_checksums() -> None:
    core = make_core()
    v1 = core.current_virtual("plc1")
    frame = _icmp_error_from_plc(core, v1, 41000)
    res = core.packet_in(S2, S2_PLC1, frame, 1.1).decision
    assert res.reason == "icmp_quote_rewritten" and not res.flows
    out = Ether(res.packet_out.data)
    assert (out[IP].src, out[IPerror].dst, out[IPerror].src) == (v1, v1, ATTACKER.ip)
    assert out.src == virtual_mac(v1) and PLC1.ip not in repr(out)
    fixed = out.copy()
    for layer in (IP, ICMP, IPerror, UDPerror):
        del fixed[layer].chksum
    fixed = Ether(bytes(fixed))
    for layer in (IP, ICMP, IPerror, UDPerror):  # each checksum as scapy computes it
        assert out[layer].chksum == fixed[layer].chksum, layer.__name__
    quoted = icmp_quoted(res.packet_out.data)
    assert quoted is not None and quoted.dst == v1
    old = RhmCore(PLAN, MutationConfig(hop_interval_s=5, seed=3), 0.0, hardening=NO_HARDENING)
    assert icmp_quoted(frame) is not None and icmp_quoted(frame).dst == PLC1.ip
    assert rewrite_icmp_error(frame, "02:00:00:00:00:65", v1, v1) != frame
    assert old.hardening.icmp_rewrite is False


def test_virtual_macs_look_like_plan_macs_and_echo_replies_keep_a_flow() -> None:
    core = make_core()
    v1 = core.current_virtual("plc1")
    mac = core.answer_mac(v1, PLC1)
    assert mac[:12] == PLC1.mac[:12] and not mac.startswith("06:00")
    ping = ipv4(ATTACKER.mac, mac, ATTACKER.ip, v1, proto=1)
    flows = core.packet_in(S2, S2_TRUNK, ping, 1.0).decision.flows
    assert [f.match.icmpv4_type for f in flows] == [None, 0]


def test_options_hardening_on_by_default_and_off_on_request() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from_args(parser.parse_args([])).hardening == Hardening()
    off = settings_from_args(parser.parse_args(["--no-hardening", "--retired-grace-s", "2"]))
    assert off.hardening == Hardening(False, False, False, 2.0)


def test_protected_hosts_non_ipv4_frames_are_dropped() -> None:
    core = make_core()
    rs = eth_frame("33:33:00:00:00:02", PLC1.mac, 0x86DD) + bytes(60)
    assert core.packet_in(S2, S2_PLC1, rs, 1.0).decision.reason == "protected_non_ipv4"
    from_hmi = eth_frame("33:33:00:00:00:02", HMI.mac, 0x86DD) + bytes(60)
    assert not core.packet_in(S1, S1_HMI, from_hmi, 1.0).decision.dropped


def test_trusted_traffic_with_real_addresses_is_never_flooded_to_other_hosts() -> None:
    core = RhmCore(PLAN, MutationConfig(seed=3), 0.0)
    for dpid in (S1, S2):
        core.switch_connected(dpid, 0.0)
    syn = ipv4(HMI.mac, PLC1.mac, HMI.ip, PLC1.ip)  # PLC1's MAC not learned anywhere yet
    at_s1 = core.packet_in(S1, S1_HMI, syn, 1.0).decision
    assert at_s1.reason == "contained_flood"
    assert [a.port for a in at_s1.packet_out.actions] == [S1_TRUNK]
    at_s2 = core.packet_in(S2, S2_TRUNK, syn, 1.0).decision
    assert [a.port for a in at_s2.packet_out.actions] == [S2_PLC1]
    other = ipv4(HMI.mac, ATTACKER.mac, HMI.ip, ATTACKER.ip)
    assert core.packet_in(S1, S1_HMI, other, 1.0).decision.reason != "contained_flood"


def test_defense_launcher_passes_the_hardening_options(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    _app, default, _logs = controller_setup(DefenseSettings("rhm"), plan_path, tmp_path)
    assert "--retired-grace-s" not in default and "--no-hardening" not in default
    _app, args, _logs = controller_setup(
        DefenseSettings("rhm", retired_grace_s=0.5, hardening=False), plan_path, tmp_path)
    assert args[args.index("--retired-grace-s") + 1] == "0.5" and "--no-hardening" in args
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = settings_from_args(parser.parse_args([a for a in args if a != "--plan"
                                                   and a != str(plan_path)]))
    assert parsed.hardening == Hardening(False, False, False, 0.5)


def test_lab_mode_takes_hop_jitter() -> None:
    opts = parse_options(["--cli", "--defense", "rhm", "--hop-interval-s", "4",
                          "--hop-jitter-s", "1.5"], "lab")
    assert opts.defense_settings().jitter_s == 1.5
    _app, args, _logs = controller_setup(opts.defense_settings(), Path("p.json"), Path("."))
    assert args[args.index("--jitter-s") + 1] == "1.5"
    with pytest.raises(UserError, match="--hop-jitter-s"):
        parse_options(["--cli", "--hop-interval-s", "2", "--hop-jitter-s", "2"], "lab")
