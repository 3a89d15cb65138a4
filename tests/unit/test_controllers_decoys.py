"""Decoy responders of the rhm core (controllers.rhm_decoys): the draw, the answers a sweep
gets, what a decoy refuses, and the ``--decoys`` option."""

from __future__ import annotations

import argparse

import pytest

from common.checksum import internet_checksum
from common.hopschedule import MutationConfig, plan_macs, schedule_events, virtual_mac
from common.plan import ics_plan
from controllers.packets import ICMP_ECHO_REPLY, PROTO_ICMP, icmp_echo_reply_frame, parse_packet
from controllers.rhm_core import RhmCore
from controllers.rhm_decoys import DecoyError, DecoySet, check_decoys
from controllers.rhm_options import add_arguments, settings_from_args
from tests.support.frames import arp_request, ipv4

PLAN = ics_plan()
ATTACKER = PLAN.host("attacker")
S1, S2 = 1, 2
S1_ATTACKER = 5
CONFIG = MutationConfig(hop_interval_s=5, seed=3)


def _core(decoys: int = 3) -> RhmCore:
    core = RhmCore(PLAN, CONFIG, now_s=0.0, decoys=decoys)
    core.switch_connected(S1, 0.0)
    core.switch_connected(S2, 0.0)
    return core


def _sweep(core: RhmCore, now_s: float) -> dict[str, str]:
    """ARP for every pool address from the attacker: address -> MAC of each answer."""
    found = {}
    for address in PLAN.virtual_pool:
        result = core.packet_in(S1, S1_ATTACKER, arp_request(ATTACKER.mac, ATTACKER.ip, address),
                                now_s)
        out = result.decision.packet_out
        if out is not None and out.data:
            reply = parse_packet(out.data).arp
            assert reply is not None and reply.spa == address
            found[address] = reply.sha
    return found


def test_a_pool_sweep_finds_the_decoys_beside_the_protected_hosts() -> None:
    core = _core(decoys=3)
    found = _sweep(core, 1.0)
    current = set(core.schedule.current.values())
    assert len(found) == 3 + len(PLAN.protected)
    assert set(found) == current | core.decoys.current and not current & core.decoys.current
    real = plan_macs(PLAN)
    for address, mac in found.items():  # every answer looks like a host's, none is a real MAC
        assert mac == virtual_mac(address, real) and mac not in real
    assert len(_sweep(_core(decoys=0), 1.0)) == len(PLAN.protected)


def test_decoys_are_redrawn_at_each_hop_and_leave_the_schedule_alone() -> None:
    core = _core(decoys=5)
    draws = [core.decoys.current]
    for step in range(1, 13):
        core.tick(step * 5.0)
        assert not core.decoys.current & set(core.schedule.current.values())
        draws.append(core.decoys.current)
    assert len(set(draws)) > 6 and all(len(d) == 5 for d in draws)
    # Same seed, same decoys; and the same hop schedule as without decoys (paired runs).
    again = _core(decoys=5)
    again.tick(5.0)
    assert again.decoys.current == draws[1]
    plain = _core(decoys=0)
    for step in range(1, 13):
        plain.tick(step * 5.0)
    assert plain.schedule.current == core.schedule.current
    events = schedule_events(PLAN, CONFIG, 60.0)
    assert [e.new_virtual for e in events if e.host == "plc1"][-1] == core.current_virtual("plc1")


def test_a_decoy_never_takes_an_address_a_conversation_still_uses() -> None:
    decoys = DecoySet(tuple(f"10.0.0.{i}" for i in range(100, 110)), 4, seed=1)
    live = {"10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103", "10.0.0.104"}
    for _ in range(50):
        assert len(decoys.redraw(live)) == 4 and not decoys.current & live
    assert len(decoys.redraw({f"10.0.0.{i}" for i in range(100, 108)})) == 2  # pool runs short


def test_a_decoy_answers_ping_and_drops_everything_else() -> None:
    core = _core(decoys=2)
    decoy = sorted(core.decoys.current)[0]
    vmac = virtual_mac(decoy, plan_macs(PLAN))
    ping = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, decoy, proto=PROTO_ICMP, icmp_type=8)
    result = core.packet_in(S1, S1_ATTACKER, ping, 1.0)
    out = result.decision.packet_out
    assert result.decision.reason == "decoy_echo" and not result.decision.flows
    assert out is not None and [a.port for a in out.actions] == [S1_ATTACKER]
    reply = parse_packet(out.data)
    assert reply.ipv4 is not None and (reply.ipv4.src, reply.ipv4.dst) == (decoy, ATTACKER.ip)
    assert reply.ipv4.icmp_type == ICMP_ECHO_REPLY
    assert (reply.eth.src, reply.eth.dst) == (vmac, ATTACKER.mac)
    assert core.stats.decoy_replies == 1
    syn = ipv4(ATTACKER.mac, vmac, ATTACKER.ip, decoy)
    dropped = core.packet_in(S1, S1_ATTACKER, syn, 1.1).decision
    assert dropped.reason == "decoy_dropped" and dropped.packet_out is None and not dropped.flows


def test_echo_reply_frame_has_valid_checksums_and_the_request_s_payload() -> None:
    request = ipv4(ATTACKER.mac, "02:00:00:00:00:64", ATTACKER.ip, "10.0.0.100",
                   proto=PROTO_ICMP, icmp_type=8) + b"\x00" * 6  # Ethernet padding
    reply = icmp_echo_reply_frame(request, "02:00:00:00:00:64")
    assert len(reply) == len(request) - 6
    assert internet_checksum(reply[14:34]) == 0 and internet_checksum(reply[34:]) == 0
    assert reply[38:] == request[38:-6]  # identifier, sequence, payload
    with pytest.raises(ValueError):
        icmp_echo_reply_frame(ipv4(ATTACKER.mac, "02:00:00:00:00:64", ATTACKER.ip,
                                   "10.0.0.100"), "02:00:00:00:00:64")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_decoys_option_is_checked_against_the_pool() -> None:
    assert settings_from_args(_parse(["--decoys", "8"])).decoys == 8
    assert settings_from_args(_parse([])).decoys == 0
    with pytest.raises(ValueError, match="--decoys: 98 decoys do not fit"):
        settings_from_args(_parse(["--decoys", "98"]))
    with pytest.raises(ValueError, match="decoys must be 0"):
        settings_from_args(_parse(["--decoys", "-1"]))
    check_decoys(97, 100, 2)
    with pytest.raises(DecoyError):
        RhmCore(PLAN, CONFIG, now_s=0.0, decoys=98)
