"""The batched build's pure parts: veth ``ip -batch`` lines and the per-host set-up line;
the star/linear plans past a /24."""

from __future__ import annotations

import ipaddress
import shlex

import pytest

from common.plan import PlanError, linear_plan, scale_subnet, star_plan
from lab.netbuild import VethEnd, host_setup_command, veth_batch_lines


def test_host_end_is_born_in_its_namespace_and_switch_end_brought_up() -> None:
    host = VethEnd("h1-eth0", "02:00:00:00:00:01", 4242)
    sw = VethEnd("s1-eth1", "aa:bb:cc:00:00:01", None)
    lines = veth_batch_lines([(host, sw)])
    # The root-namespace end is the main device, the host's end the peer created in its netns.
    assert lines == [
        "link add name s1-eth1 address aa:bb:cc:00:00:01 type veth peer name h1-eth0 "
        "address 02:00:00:00:00:01 netns 4242",
        "link set dev s1-eth1 up",
    ]
    assert not any("link set dev h1-eth0" in ln for ln in lines)


def test_trunk_between_switches_both_ends_up_in_root() -> None:
    lines = veth_batch_lines([(VethEnd("s1-eth2", None, None), VethEnd("s2-eth2", None, None))])
    assert lines == ["link add name s1-eth2 type veth peer name s2-eth2",
                     "link set dev s1-eth2 up", "link set dev s2-eth2 up"]


def test_all_pairs_created_before_any_is_brought_up() -> None:
    pairs = [(VethEnd(f"h{i}-eth0", None, 100 + i), VethEnd(f"s1-eth{i}", None, None))
             for i in range(1, 4)]
    lines = veth_batch_lines(pairs)
    kinds = [ln.split()[1] for ln in lines]
    assert kinds == ["add"] * 3 + ["set"] * 3


def test_host_setup_command_is_one_ip_batch_and_ethtool_per_interface() -> None:
    cmd = host_setup_command("h1-eth0", "10.0.0.1/22", "02:00:00:00:00:01", True,
                             ["h1-eth1"])
    pipeline, *ethtools = cmd.split("; ")
    printf, ip = pipeline.split(" | ")
    assert ip == "ip -batch -"
    lines = shlex.split(printf)[2:]
    assert lines == ["link set dev lo up", "link set dev h1-eth0 address 02:00:00:00:00:01",
                     "addr add 10.0.0.1/22 dev h1-eth0", "link set dev h1-eth0 up"]
    assert ethtools == ["ethtool -K h1-eth0 tx off >/dev/null 2>&1",
                        "ethtool -K h1-eth1 tx off >/dev/null 2>&1"]


def test_host_setup_command_without_offload_change_or_address() -> None:
    cmd = host_setup_command("h1-eth0", None, None, False)
    assert "ethtool" not in cmd and "addr add" not in cmd and "address" not in cmd


@pytest.mark.parametrize(("n", "subnet"), [(2, "10.0.0.0/24"), (253, "10.0.0.0/24"),
                                           (254, "10.0.0.0/23"), (509, "10.0.0.0/23"),
                                           (510, "10.0.0.0/22"), (1000, "10.0.0.0/22")])
def test_scale_subnet_is_the_narrowest_that_holds_the_hosts(n: int, subnet: str) -> None:
    assert scale_subnet(n) == subnet


@pytest.mark.parametrize("factory", [star_plan, linear_plan])
def test_thousand_host_plans_fit_a_22_with_unique_addresses(factory) -> None:
    plan = factory(1000)
    net = ipaddress.IPv4Network(plan.subnet)
    assert net.prefixlen == 22
    ips = [h.ip for h in plan.hosts]
    assert len(set(ips)) == 1000 and len({h.mac for h in plan.hosts}) == 1000
    assert all(ipaddress.IPv4Address(ip) in net for ip in ips)
    assert plan.hosts[-1].role == "attacker" and plan.hosts[-1].ip == "10.0.3.232"
    assert plan.virtual_pool and not set(plan.virtual_pool) & set(ips)
    assert str(net.broadcast_address) not in plan.virtual_pool


def test_plan_given_a_subnet_too_small_is_refused() -> None:
    with pytest.raises(PlanError, match="do not fit"):
        star_plan(300, "10.0.0.0/24")
