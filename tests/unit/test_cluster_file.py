"""The cluster file: validation (one-line errors naming the key) and placement."""

from __future__ import annotations

from pathlib import Path

import mininet.clean
import pytest

from common.errors import UserError
from common.plan import ics_plan, linear_plan, star_plan
from lab.cluster import cross_server_links, load_cluster, parse_cluster, place
from lab.cluster_nodes import ClusterCleanup, defuse_cluster_cleanup

DATA = Path(__file__).resolve().parents[1] / "data"


def base(**changes: object) -> dict:
    data: dict = {
        "servers": [{"name": "a", "address": "10.9.0.1"}, {"name": "b", "address": "10.9.0.2"},
                    {"name": "c", "address": "10.9.0.3"}],
        "ssh": {"key": "/srv/key", "known_hosts": "/srv/kh"},
        "controller_address": "10.9.0.10",
    }
    data.update(changes)
    return data


def test_shipped_files_are_valid() -> None:
    two = load_cluster(DATA / "cluster-2.yaml")
    assert [s.name for s in two.servers] == ["srv1", "srv2"]
    assert two.placement == "zone" and two.zones == {"s1": "srv1", "s2": "srv2"}
    assert two.link == "ssh" and two.controller_address == "172.31.250.1"
    three = load_cluster(DATA / "cluster-3.yaml")
    assert three.link == "vxlan" and three.hosts == {"attacker": "srv3"}
    placement = place(ics_plan(), three)
    assert set(placement.values()) == {"srv1", "srv2", "srv3"}
    for n in (1, 2, 3):
        block = load_cluster(DATA / f"cluster-{n}-block.yaml")
        assert block.placement == "block" and len(block.servers) == n
        assert len(set(place(star_plan(250), block).values())) == n


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"servers": []}, "servers must be a non-empty list"),
    ({"servers": [{"name": "a"}]}, "servers[1]: missing key 'address'"),
    ({"servers": [{"name": "a", "address": "a.b", "port": 2}]}, "unknown key in servers[1]: "),
    ({"servers": [{"name": "a", "address": "300.1.1.1"}]}, "is not an IPv4 address"),
    ({"servers": [{"name": "a", "address": "10.0.0.1"}, {"name": "a", "address": "10.0.0.2"}]},
     "two servers with the same name 'a'"),
    ({"controller_address": "0.0.0.0"}, "controller_address = 0.0.0.0 cannot be used"),
    ({"controller_address": "127.0.0.1"}, "cannot be used"),
    ({"ssh": {"key": "/k"}}, "ssh: missing key 'known_hosts'"),
    ({"link": "gre"}, "link = 'gre' is invalid; expected one of ssh, vxlan"),
    ({"placement": "random"}, "placement = 'random' is invalid"),
    ({"placement": "zone"}, "placement zone needs 'zones'"),
    ({"zones": {"s1": "nowhere"}}, "zones.s1 = 'nowhere': no such server"),
    ({"hosts": {"attacker": "nowhere"}}, "hosts.attacker = 'nowhere': no such server"),
    ({"hosts": ["attacker"]}, "hosts must map host names to server names"),
])
def test_bad_files_one_line_errors(change: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_cluster(base(**change), "c.yaml")
    text = str(err.value)
    assert text.startswith("c.yaml: ") and message in text and "\n" not in text


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No such file"):
        load_cluster(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers: [\n")
    with pytest.raises(UserError, match="not valid yaml"):
        load_cluster(bad)


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('controller_address = "10.9.0.10"\nlink = "vxlan"\n'
                    '[ssh]\nkey = "/k"\nknown_hosts = "/kh"\n'
                    '[[servers]]\nname = "a"\naddress = "10.9.0.1"\n')
    spec = load_cluster(path)
    assert spec.link == "vxlan" and spec.servers[0].interpreter.endswith("/.venv/bin/python")
    assert "UserKnownHostsFile=/kh" in spec.ssh_options


def test_zone_placement_of_ics() -> None:
    spec = parse_cluster(base(zones={"s1": "a", "s2": "b"}))
    placement = place(ics_plan(), spec)
    assert placement["s1"] == "a" and placement["s2"] == "b"
    assert {placement[h] for h in ("hmi", "ews", "historian", "attacker")} == {"a"}
    assert placement["plc1"] == placement["plc2"] == "b"
    assert cross_server_links(ics_plan(), placement) == [("s1", "s2")]


def test_zone_placement_needs_every_switch() -> None:
    with pytest.raises(UserError, match="switch 's2' of topology ics has no server"):
        place(ics_plan(), parse_cluster(base(zones={"s1": "a"})))
    with pytest.raises(UserError, match="has no switch 's9'"):
        place(ics_plan(), parse_cluster(base(zones={"s1": "a", "s2": "b", "s9": "c"})))


def test_host_overrides_cross_servers() -> None:
    spec = parse_cluster(base(zones={"s1": "a", "s2": "b"}, hosts={"attacker": "c"}))
    placement = place(ics_plan(), spec)
    assert placement["attacker"] == "c" and placement["hmi"] == "a"
    assert cross_server_links(ics_plan(), placement) == [("s1", "s2"), ("attacker", "s1")]
    star = place(star_plan(4), parse_cluster(base(hosts={"h1": "c"})))
    assert star["h1"] == "c" and star["s1"] == "a"
    with pytest.raises(UserError, match=r"hosts\.hx: topology star has no host 'hx'"):
        place(star_plan(4), parse_cluster(base(hosts={"hx": "c"})))


def test_block_and_round_robin_of_linear() -> None:
    plan = linear_plan(7)
    block = place(plan, parse_cluster(base()))
    assert [block[f"s{i}"] for i in range(1, 8)] == ["a", "a", "a", "b", "b", "c", "c"]
    assert all(block[f"h{i}"] == block[f"s{i}"] for i in range(1, 8))
    assert len(cross_server_links(plan, block)) == 2
    rr = place(plan, parse_cluster(base(placement="round-robin")))
    assert [rr[f"s{i}"] for i in range(1, 5)] == ["a", "b", "c", "a"]


def test_star_keeps_its_switch_and_spreads_hosts() -> None:
    plan = star_plan(10)
    block = place(plan, parse_cluster(base()))
    assert block["s1"] == "a"
    assert [block[f"h{i}"] for i in range(1, 11)] == ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    assert len(cross_server_links(plan, block)) == 6


def test_cluster_cleanup_mn_c_is_never_registered() -> None:
    ClusterCleanup.add("srv1", user="root")
    assert ClusterCleanup.cleanup in mininet.clean.Cleanup.callbacks
    defuse_cluster_cleanup()
    assert ClusterCleanup.cleanup not in mininet.clean.Cleanup.callbacks
