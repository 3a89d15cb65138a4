"""The scope guard: only IPv4 addresses/CIDRs wholly inside the plan's subnet get through."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.plan import classic_plan, ics_plan
from common.scope import ScopeError, expand_targets, require_in_scope

PLAN = classic_plan()  # 10.0.0.0/24


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("8.8.8.8", "outside the plan's subnet 10.0.0.0/24"),
        ("192.168.1.0/24", "outside"),
        ("10.0.0.0/8", "outside"),
        ("10.0.1.5", "outside"),
        ("0.0.0.0/0", "outside"),
        ("plc1", "host names are not resolved"),
        ("localhost", "host names are not resolved"),
        ("h1.example.com", "host names are not resolved"),
        ("10.0.0.0/33", "malformed CIDR"),
        ("10.0.0.0/", "malformed CIDR"),
        ("10.0.0/24", "malformed"),
        ("10.0.0.256", "malformed"),
        ("10.0.0.01", "malformed"),
        ("10.0.0.5/24", "did you mean 10.0.0.0/24"),
        ("", "empty"),
        ("   ", "empty"),
        ("::1", "IPv6"),
        ("fe80::/64", "IPv6"),
        ("::ffff:10.0.0.1", "IPv6"),
        ("10.0.0.1-300", "ranges are not accepted"),
        ("10.0.0.1-3", "ranges are not accepted"),
        ("10.0.0.0", "network or broadcast"),
        ("10.0.0.255", "network or broadcast"),
        ("10.0.0.1,8.8.8.8", "'8.8.8.8' is outside"),
        ("10.0.0.1,,10.0.0.2", "empty"),
    ],
)
def test_refused_with_one_line_message(target: str, says: str) -> None:
    with pytest.raises(ScopeError) as err:
        expand_targets(PLAN, target)
    message = str(err.value)
    assert says in message
    assert "\n" not in message


def test_whole_subnet_expands_to_its_host_addresses() -> None:
    expanded = expand_targets(PLAN, "10.0.0.0/24")
    assert len(expanded) == 254
    assert expanded[0] == "10.0.0.1" and expanded[-1] == "10.0.0.254"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("10.0.0.4", ("10.0.0.4",)),
        (" 10.0.0.4 ", ("10.0.0.4",)),
        ("10.0.0.0/30", ("10.0.0.1", "10.0.0.2")),
        ("10.0.0.8/31", ("10.0.0.8", "10.0.0.9")),
        ("10.0.0.2/32", ("10.0.0.2",)),
        ("10.0.0.4,10.0.0.0/30,10.0.0.2", ("10.0.0.4", "10.0.0.1", "10.0.0.2")),
        ("10.0.0.252/30", ("10.0.0.253", "10.0.0.254")),
    ],
)
def test_accepted_targets_expand_in_order_without_duplicates(target: str,
                                                             expected: tuple[str, ...]) -> None:
    assert expand_targets(PLAN, target) == expected


def test_scope_follows_the_plan_subnet() -> None:
    plan = ics_plan(subnet="172.16.5.0/24")
    assert expand_targets(plan, "172.16.5.21") == ("172.16.5.21",)
    with pytest.raises(ScopeError):
        expand_targets(plan, "10.0.0.21")


def test_require_in_scope_wants_exactly_one_address() -> None:
    assert require_in_scope(PLAN, "10.0.0.9") == "10.0.0.9"
    with pytest.raises(ScopeError):
        require_in_scope(PLAN, "10.0.0.0/30")
    with pytest.raises(ScopeError):
        require_in_scope(PLAN, "10.0.1.9")


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_anything_accepted_is_inside_the_plan(address: ipaddress.IPv4Address,
                                             prefix: int) -> None:
    net = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    try:
        expanded = expand_targets(PLAN, str(net))
    except ScopeError:
        assert not net.subnet_of(PLAN.network) or net.num_addresses == 1
        return
    assert net.subnet_of(PLAN.network)
    for item in expanded:
        ip = ipaddress.IPv4Address(item)
        assert ip in PLAN.network
        assert ip not in (PLAN.network.network_address, PLAN.network.broadcast_address)
