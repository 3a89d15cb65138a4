"""The address plan and the plan-built topologies (no root)."""

from __future__ import annotations

import ipaddress
import runpy
from pathlib import Path

import pytest

from common.plan import (
    AddressPlan,
    HostSpec,
    PlanError,
    SwitchSpec,
    classic_plan,
    ics_plan,
    linear_plan,
    plan_for,
    star_plan,
)
from topologies.base import PlanTopo

REPO = Path(__file__).resolve().parents[2]


def test_ics_plan_roles_and_addresses() -> None:
    plan = ics_plan()
    assert plan.subnet == "10.0.0.0/24"
    names = {h.name for h in plan.hosts}
    assert names == {"hmi", "ews", "historian", "attacker", "plc1", "plc2"}
    assert {h.name for h in plan.protected} == {"plc1", "plc2"}
    assert {h.name for h in plan.hosts if h.authorized} == {"hmi", "ews", "historian"}
    assert plan.attacker is not None and plan.attacker.name == "attacker"
    assert plan.host("plc1").switch == "s2" and plan.host("hmi").switch == "s1"


def test_virtual_pool_never_holds_a_real_address() -> None:
    for plan in (ics_plan(), classic_plan(), star_plan(50), linear_plan(6)):
        real = {h.ip for h in plan.hosts}
        assert plan.virtual_pool, plan.name
        assert not real & set(plan.virtual_pool)
        net = plan.network
        assert all(ipaddress.IPv4Address(v) in net for v in plan.virtual_pool)


def test_addresses_and_macs_unique_and_in_subnet() -> None:
    plan = star_plan(250)
    assert len({h.ip for h in plan.hosts}) == 250
    assert len({h.mac for h in plan.hosts}) == 250
    assert all(plan.in_scope(h.ip) for h in plan.hosts)


@pytest.mark.parametrize("n", [1, 0, 1001, -3])
def test_scale_bounds(n: int) -> None:
    with pytest.raises(PlanError):
        star_plan(n)


def test_plan_rejects_collisions() -> None:
    sw = (SwitchSpec("s1", "1".zfill(16)),)
    a = HostSpec("a", "host", "10.0.0.1", "02:00:00:00:00:01", "s1")
    b = HostSpec("b", "host", "10.0.0.1", "02:00:00:00:00:02", "s1")
    with pytest.raises(PlanError, match=r"share 10\.0\.0\.1"):
        AddressPlan("x", "10.0.0.0/24", (a, b), sw)
    c = HostSpec("c", "host", "10.0.1.1", "02:00:00:00:00:03", "s1")
    with pytest.raises(PlanError, match="outside"):
        AddressPlan("x", "10.0.0.0/24", (c,), sw)
    with pytest.raises(PlanError, match="real address"):
        AddressPlan("x", "10.0.0.0/24", (a,), sw, virtual_pool=("10.0.0.1",))


def test_in_scope() -> None:
    plan = ics_plan()
    assert plan.in_scope("10.0.0.21")
    assert plan.in_scope("10.0.0.0/24")
    assert plan.in_scope("10.0.0.16/28")
    assert not plan.in_scope("10.0.0.0/8")
    assert not plan.in_scope("8.8.8.8")
    assert not plan.in_scope("plc1")
    assert not plan.in_scope("10.0.0.300")


def test_json_round_trip(tmp_path: Path) -> None:
    plan = ics_plan()
    plan.save(tmp_path / "plan.json")
    assert AddressPlan.load(tmp_path / "plan.json") == plan


def test_ground_truth_excludes_observer() -> None:
    truth = ics_plan().ground_truth(exclude=["attacker"])
    assert "10.0.0.66" not in truth and len(truth) == 5


def test_plan_for_unknown() -> None:
    with pytest.raises(PlanError, match="unknown topology"):
        plan_for("mesh")


@pytest.mark.parametrize("name,n,hosts,switches,links", [
    ("ics", None, 6, 2, 7), ("classic", None, 4, 1, 4), ("star", 10, 10, 1, 10),
    ("linear", 5, 5, 5, 9)])
def test_topologies_are_pure_graphs(name: str, n: int | None, hosts: int, switches: int,
                                    links: int) -> None:
    topo = PlanTopo(plan_for(name, n))
    assert len(topo.hosts()) == hosts
    assert len(topo.switches()) == switches
    assert len(topo.links()) == links
    plan = plan_for(name, n)
    for h in plan.hosts:
        info = topo.nodeInfo(h.name)
        assert info["ip"] == f"{h.ip}/24"
        assert info["mac"] == h.mac
        assert info["defaultRoute"] is None  # no route out of the emulated network


def test_topology_builds_no_loop() -> None:
    # The shipped topologies are trees: links = nodes - 1 (flooding cannot loop).
    for name, n in (("ics", None), ("star", 30), ("linear", 12), ("classic", None)):
        topo = PlanTopo(plan_for(name, n))
        assert len(topo.links()) == len(topo.nodes()) - 1


@pytest.mark.parametrize("path,topo", [("topologies/ics.py", "ics"),
                                       ("topologies/ics.py", "classic"),
                                       ("topologies/scale.py", "star"),
                                       ("topologies/scale.py", "linear")])
def test_mn_custom_files_export_topos(path: str, topo: str) -> None:
    # `mn --custom FILE` execs the file and reads its `topos` dict.
    ns = runpy.run_path(str(REPO / path))
    assert topo in ns["topos"] and ns["TOPOS"] is ns["topos"]
    assert isinstance(ns["topos"][topo](), PlanTopo)
