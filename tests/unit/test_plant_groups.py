"""Host groups in plant files (``count: N``), the port-name rule, and the 1000-host utility."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from common.plant import PlantError, parse_plant
from common.plant_groups import MAX_GROUP, GroupError, expand_group, member_names
from experiments import run
from lab.devices import hmi_spec, load_plant_plan, plc_processes
from plc.program import process_kinds
from topologies.plant import PlantTopo

ROOT = Path(__file__).resolve().parents[2]
UTILITY = ROOT / "plants" / "utility1k.yaml"


def _plant(*extra_hosts: dict[str, Any], subnet: str = "10.40.0.0/22",
           pool: str | None = None) -> dict[str, Any]:
    """A two-zone plant (an HMI and one PLC) plus the given host entries."""
    data: dict[str, Any] = {
        "name": "grp", "subnet": subnet,
        "zones": [{"name": "ctl"}, {"name": "proc"}], "trunks": [["ctl", "proc"]],
        "hosts": [{"name": "hmi", "role": "hmi", "address": "10.40.0.1", "zone": "ctl"},
                  {"name": "plc", "role": "plc", "address": "10.40.1.1", "zone": "proc"},
                  *extra_hosts],
        "plcs": [{"host": "plc", "process": {"kind": "tank"}}]}
    if pool is not None:
        data["virtual_pool"] = pool
    return data


def _group(**over: Any) -> dict[str, Any]:
    entry = {"name": "fd", "count": 3, "role": "other", "address": "10.40.1.10",
             "zone": "proc", "protected": False, "authorized": True,
             "description": "field devices"}
    entry.update(over)
    return entry


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(PlantError) as info:
        parse_plant(data, process_kinds())
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_group_is_its_members_at_consecutive_addresses() -> None:
    plan = parse_plant(_plant(_group()), process_kinds())
    members = [h for h in plan.hosts if h.name.startswith("fd")]
    assert [(h.name, h.ip, h.mac) for h in members] == [
        ("fd1", "10.40.1.10", "02:00:00:00:01:0a"),
        ("fd2", "10.40.1.11", "02:00:00:00:01:0b"),
        ("fd3", "10.40.1.12", "02:00:00:00:01:0c")]
    assert {(h.role, h.switch, h.protected, h.authorized) for h in members} == {
        ("host", "proc", False, True)}


def test_a_group_equals_the_same_hosts_written_one_by_one() -> None:
    by_hand = [{k: v for k, v in _group(name=f"fd{k}", address=f"10.40.1.{9 + k}").items()
                if k != "count"} for k in (1, 2, 3)]
    assert parse_plant(_plant(_group())) == parse_plant(_plant(*by_hand))


def test_a_group_may_cross_a_24_boundary_inside_a_22() -> None:
    plan = parse_plant(_plant(_group(count=4, address="10.40.0.253")))
    assert [plan.host(f"fd{k}").ip for k in (1, 2, 3, 4)] == [
        "10.40.0.253", "10.40.0.254", "10.40.0.255", "10.40.1.0"]


def test_a_group_of_one_and_the_largest_group() -> None:
    plan = parse_plant(_plant(_group(count=1)))
    assert plan.host("fd1").ip == "10.40.1.10"
    assert len(member_names("x", MAX_GROUP)) == MAX_GROUP
    big = _plant(_group(count=MAX_GROUP, address="10.64.0.1", name="x"), subnet="10.64.0.0/16")
    big["hosts"][:2] = [{"name": "hmi", "role": "hmi", "address": "10.64.200.1", "zone": "ctl"},
                        {"name": "plc", "role": "plc", "address": "10.64.200.2", "zone": "proc"}]
    # 4098 ports on one zone ('proc-eth4098' fits); the members are x1..x4096.
    plan = parse_plant(big)
    assert plan.host(f"x{MAX_GROUP}").ip == "10.64.16.0"


def test_expand_group_alone() -> None:
    import ipaddress
    net = ipaddress.IPv4Network("10.0.0.0/24")
    members = expand_group({"name": "d", "count": 2, "address": "10.0.0.253", "zone": "z"},
                           "10.0.0.253", 2, net)
    assert members == [{"name": "d1", "address": "10.0.0.253", "zone": "z"},
                       {"name": "d2", "address": "10.0.0.254", "zone": "z"}]
    with pytest.raises(GroupError) as info:
        expand_group({"name": "d"}, "10.0.0.253", 3, net)
    assert info.value.key == "count" and "room for 2" in str(info.value)


@pytest.mark.parametrize(("count", "what"), [
    (0, "0 is outside 1..4096"), (-2, "-2 is outside 1..4096"),
    (MAX_GROUP + 1, "4097 is outside 1..4096"), (2.5, "expected an integer, got float"),
    (True, "expected an integer, got bool"), ("3", "expected an integer, got str")])
def test_a_bad_count_is_one_line_naming_the_entry(count: Any, what: str) -> None:
    assert _error(_plant(_group(count=count))) == f"hosts[2].count: {what}"


def test_a_group_past_the_subnets_end() -> None:
    message = _error(_plant(_group(count=10, address="10.40.3.250")))
    assert message == ("hosts[2].count: 10 hosts from 10.40.3.250 run past the subnet's end "
                       "(10.40.3.254 is its last host address: room for 5)")
    # Exactly up to the last host address is fine.
    assert parse_plant(_plant(_group(count=5, address="10.40.3.250"))).host("fd5").ip == \
        "10.40.3.254"


def test_a_group_running_into_another_hosts_address() -> None:
    message = _error(_plant(_group(count=5, address="10.40.0.254")))
    # fd1..fd5 are 10.40.0.254 .. 10.40.1.2: fd4 is 10.40.1.1, the PLC's address.
    assert message == ("hosts[2].address: 10.40.1.1 is already the address of 'plc' "
                       "(the group's member 'fd4')")
    # A host written after a group, on one of its addresses.
    late = {"name": "cam", "role": "other", "address": "10.40.1.11", "zone": "proc"}
    assert _error(_plant(_group(), late)) == \
        "hosts[3].address: 10.40.1.11 is already the address of 'fd2'"
    # Two groups that overlap.
    assert _error(_plant(_group(), _group(name="io", address="10.40.1.12"))) == \
        "hosts[3].address: 10.40.1.12 is already the address of 'fd3' (the group's member 'io1')"


def test_a_group_member_named_like_another_host_or_zone() -> None:
    other = {"name": "fd2", "role": "other", "address": "10.40.2.2", "zone": "proc"}
    assert _error(_plant(other, _group())).startswith(
        "hosts[3].name: duplicate name 'fd2' (host and zone names are one namespace)")
    data = _plant(_group(name="proc", count=2))
    data["zones"].append({"name": "proc2"})
    data["trunks"].append(["proc", "proc2"])
    assert _error(data).startswith("hosts[2].name: duplicate name 'proc2'")


def test_a_member_name_too_long_and_a_bad_base_name() -> None:
    assert _error(_plant(_group(name="fielddev", count=120))) == (
        "hosts[2].name: 'fielddev100' is not a valid host name ([a-z][a-z0-9]*, "
        "at most 10 characters)")
    assert _error(_plant(_group(name="Fd"))).startswith(
        "hosts[2].name: 'Fd' is not a valid host name")
    assert _error(_plant(_group(name=7))) == "hosts[2].name: expected a string, got int"


def test_a_group_with_a_mac_or_a_bad_first_address() -> None:
    assert _error(_plant(_group(mac="02:00:00:00:99:01"))).startswith(
        "hosts[2].mac: a group of 3 cannot share one MAC")
    assert _error(_plant(_group(address="10.40.0.0"))) == \
        "hosts[2].address: 10.40.0.0 is the subnet's network address"
    assert _error(_plant(_group(address="10.41.0.1"))) == \
        "hosts[2].address: 10.41.0.1 is outside the subnet 10.40.0.0/22"
    assert _error(_plant(_group(count=2, unknown=1))).startswith(
        "hosts[2].unknown: unknown key")


def test_a_group_member_in_the_virtual_pool() -> None:
    assert _error(_plant(_group(), pool="10.40.1.11-10.40.1.20")) == \
        "virtual_pool: 10.40.1.11 is the real address of 'fd2'"


def test_a_group_obeys_the_role_rules() -> None:
    assert _error(_plant(_group(role="attacker", count=2))).startswith(
        "hosts[2].role: a second attacker (hosts 'fd1' and 'fd2')")
    plcs = _plant(_group(role="plc", count=2, protected=True))
    assert _error(plcs).startswith("hosts[2]: PLC 'fd1' has no process")
    plcs["plcs"] += [{"host": f"fd{k}", "process": {"kind": "dosing"}} for k in (1, 2)]
    plan = parse_plant(plcs, process_kinds())
    assert plc_processes(plan) == {"plc": "tank", "fd1": "dosing", "fd2": "dosing"}
    assert plan.host("fd2").protected


def test_a_zone_whose_port_names_would_be_too_long() -> None:
    data = _plant(_group(count=99))
    data["zones"][1]["name"] = data["hosts"][1]["zone"] = "process"
    data["hosts"][2]["zone"] = "process"
    data["trunks"] = [["ctl", "process"]]
    # 1 trunk + the PLC + 99 members = 101 ports: 'process-eth101' is 14 characters.
    assert _error(data) == ("zones[1].name: 101 ports make the port name 'process-eth101' "
                            "longer than 13 characters (15 with a two-letter switch "
                            "prefix): shorten the zone name")
    data["hosts"][2]["count"] = 98  # 100 ports: 'process-eth100' is still 14
    assert _error(data).startswith("zones[1].name: 100 ports")
    data["hosts"][2]["count"] = 97
    assert len(parse_plant(data).hosts) == 99


def test_plant_check_names_the_group_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = UTILITY.read_text().replace("{name: dsfd, count: 176,", "{name: dsfd, count: 177,")
    path = tmp_path / "over.yaml"
    path.write_text(text)
    assert run.main(["plant-check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    # dsfd1..dsfd177 now end at 10.40.3.180, the address the reservoir PLC (hosts[17]) has.
    assert err == (f"error: {path}: hosts[17].address: 10.40.3.180 is already the address "
                   "of 'dsfd177'\n")


def test_the_utility_plant_1000_hosts_five_zones_on_a_22() -> None:
    plan = load_plant_plan(UTILITY)
    assert plan.prefixlen == 22 and plan.subnet == "10.40.0.0/22"
    assert len(plan.hosts) == 1000
    assert [s.name for s in plan.switches] == ["ctl", "intake", "treat", "dist", "remote"]
    assert ("dist", "remote") in plan.trunks  # a tree two trunks deep
    kinds = plc_processes(plan)
    assert len(kinds) == 11 and set(kinds.values()) == {"tank", "pressure", "dosing"}
    assert {p.host for p in plan.plcs if p.protocol == "s7"} == {
        "cleartank", "booster2", "trimdose"}
    others = [h for h in plan.hosts if h.role == "host"]
    assert len(others) == 985 and not any(h.protected for h in others)
    assert len({h.ip for h in plan.hosts}) == 1000 and len({h.mac for h in plan.hosts}) == 1000
    # Hosts in every /24 block of the /22, so a sweep of the whole prefix is needed.
    assert len({h.ip.rsplit(".", 1)[0] for h in plan.hosts}) == 4
    spec = hmi_spec(plan)
    assert spec is not None and set(spec.polls) == set(kinds)
    assert len(plan.virtual_pool) == 16
    # Every switch port name fits an interface name with a two-letter switch prefix.
    ports: dict[str, int] = {}
    for switch, port in plan.edge_ports().values():
        ports[switch] = max(ports.get(switch, 0), port)
    assert max(len(f"pz{s}-eth{p}") for s, p in ports.items()) <= 15
    topo = PlantTopo(str(UTILITY), switch_prefix="pz")
    assert len(topo.hosts()) == 1000 and len(topo.switches()) == 5
    assert len(topo.links()) == 1000 + 4


def test_no_test_data_was_changed_by_the_helpers() -> None:
    group = _group()
    before = copy.deepcopy(group)
    parse_plant(_plant(group))
    assert group == before
