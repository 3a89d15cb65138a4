"""nmap XML captured from a real scan in an emulated network -> records -> findings.

The files in data/ come from nmap 7.93 run in host axh1 (10.0.0.1) of a 4-host Mininet network
where axh2 served HTTP on 80 and axh4 a Modbus/TCP responder (Report Server ID) on 502.
The ``*.trace.txt`` files are the same run's ``--packet-trace`` stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attacks.recon_parse import (
    Findings,
    NmapParseError,
    ReplyTimes,
    local_ipv4_interfaces,
    parse_nmap_xml,
    parse_packet_trace,
)
from common.modbus import describe_report_server_id, report_server_id_request

DATA = Path(__file__).parent / "data"
SCOPE = frozenset(f"10.0.0.{i}" for i in range(1, 255))


def _run(name: str):
    return parse_nmap_xml((DATA / f"nmap_{name}.xml").read_text())


def test_discovery_lists_hosts_with_macs_and_marks_the_scanner_itself() -> None:
    run = _run("discovery")
    by_ip = {h.address: h for h in run.hosts}
    assert set(by_ip) == {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
    assert by_ip["10.0.0.4"].mac == "02:00:00:00:00:04"
    assert by_ip["10.0.0.1"].is_self and by_ip["10.0.0.1"].mac is None
    assert run.elapsed_s == pytest.approx(1.96)
    assert run.exit == "success" and run.hosts_up == 4


def test_findings_exclude_the_attacker() -> None:
    findings = Findings(scope=SCOPE, exclude={"10.0.0.1"})
    assert findings.merge_nmap(_run("discovery"), at_s=1.9, stage="discovery") == 3
    assert findings.addresses() == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert findings.hosts["10.0.0.3"].first_seen_s == 1.9


def test_self_is_dropped_even_without_an_exclude_list() -> None:
    findings = Findings(scope=SCOPE, exclude=set())
    findings.merge_nmap(_run("discovery"), at_s=1.0, stage="discovery")
    assert "10.0.0.1" not in findings.hosts


def test_syn_scan_open_ports_per_host() -> None:
    findings = Findings(scope=SCOPE, exclude={"10.0.0.1"})
    findings.merge_nmap(_run("syn"), at_s=2.0, stage="syn")
    assert findings.open_ports("10.0.0.2") == [80]
    assert findings.open_ports("10.0.0.4") == [502]
    # axh3 answered with RSTs only: alive, no open port.
    assert findings.open_ports("10.0.0.3") == []
    assert "10.0.0.3" in findings.hosts


def test_connect_scan_agrees_with_syn_scan() -> None:
    syn = Findings(scope=SCOPE, exclude={"10.0.0.1"})
    syn.merge_nmap(_run("syn"), at_s=0, stage="syn")
    connect = Findings(scope=SCOPE, exclude={"10.0.0.1"})
    connect.merge_nmap(_run("connect"), at_s=0, stage="connect")
    assert connect.addresses() == syn.addresses()
    for address in syn.addresses():
        assert connect.open_ports(address) == syn.open_ports(address)
    # A connect scan goes through the kernel's sockets: nmap sees no MAC then.
    assert connect.hosts["10.0.0.2"].mac is None


def test_later_stages_refine_but_keep_first_seen() -> None:
    findings = Findings(scope=SCOPE, exclude={"10.0.0.1"})
    findings.merge_nmap(_run("discovery"), at_s=1.9, stage="discovery")
    findings.merge_nmap(_run("syn"), at_s=2.0, stage="syn")
    findings.merge_nmap(_run("version"), at_s=12.4, stage="version")
    findings.merge_nmap(_run("modbus"), at_s=12.5, stage="modbus")
    web = findings.hosts["10.0.0.2"]
    assert (web.found_by, web.first_seen_s, web.mac) == ("discovery", 1.9, "02:00:00:00:00:02")
    http = web.ports[80]
    assert (http.found_by, http.first_seen_s) == ("syn", 2.0)
    assert (http.service, http.product, http.version) == ("http", "SimpleHTTPServer", "0.6")
    plc = findings.hosts["10.0.0.4"].ports[502]
    assert plc.service == "modbus"
    assert "SDNICS-test" in plc.details["modbus-discover"]
    record = findings.to_list()[2]
    assert record["open_ports"] == [502]
    json.dumps(findings.to_list())  # serialisable as is


def test_out_of_scope_hosts_are_never_recorded() -> None:
    findings = Findings(scope={"10.0.0.2"}, exclude=set())
    findings.merge_nmap(_run("syn"), at_s=0, stage="syn")
    assert findings.addresses() == ["10.0.0.2"]


def test_pn_user_set_host_without_answers_is_not_alive() -> None:
    xml = """<?xml version="1.0"?><nmaprun args="nmap -Pn"><host>
    <status state="up" reason="user-set"/><address addr="10.0.0.9" addrtype="ipv4"/>
    <ports><port protocol="tcp" portid="502"><state state="filtered" reason="no-response"/>
    </port></ports></host></nmaprun>"""
    run = parse_nmap_xml(xml)
    assert not run.hosts[0].is_alive
    assert run.elapsed_s is None and run.exit is None  # scan ended before runstats
    findings = Findings(scope=SCOPE, exclude=set())
    assert findings.merge_nmap(run, at_s=0, stage="syn") == 0


@pytest.mark.parametrize("text", ["", "<nmaprun><host>", "not xml", "<other/>"])
def test_incomplete_xml_is_a_parse_error(text: str) -> None:
    with pytest.raises(NmapParseError):
        parse_nmap_xml(text)


def test_truncated_capture_is_a_parse_error() -> None:
    text = (DATA / "nmap_syn.xml").read_text()
    with pytest.raises(NmapParseError):
        parse_nmap_xml(text[: len(text) // 2])


def test_local_interfaces_from_ip_json() -> None:
    ip_json = json.dumps([
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1",
                                        "prefixlen": 8}]},
        {"ifname": "axh1-eth0", "addr_info": [{"family": "inet", "local": "10.0.0.1",
                                               "prefixlen": 24}]},
    ])
    assert local_ipv4_interfaces(ip_json) == {"127.0.0.1/8": "lo", "10.0.0.1/24": "axh1-eth0"}
    assert local_ipv4_interfaces("") == {}


def test_modbus_report_server_id_round_trip() -> None:
    request = report_server_id_request(7, 1)
    assert request == bytes.fromhex("0007 0000 0002 01 11")
    body = b"\x01\xffSDNICS-test"
    reply = bytes.fromhex("0007 0000") + (len(body) + 3).to_bytes(2, "big") + bytes(
        [1, 0x11, len(body)]) + body
    assert describe_report_server_id(reply, 7) == r"server id data: \x01\xFFSDNICS-test"
    assert describe_report_server_id(reply, 8) is None  # another transaction
    exception = bytes.fromhex("0007 0000 0003 01 91 01")
    assert describe_report_server_id(exception, 7) == "exception 0x01"
    assert describe_report_server_id(b"HTTP/1.0 400 Bad request\r\n", 7) is None


def _trace(name: str) -> str:
    return (DATA / f"nmap_{name}.trace.txt").read_text()


def test_packet_trace_times_each_host_at_its_first_answer() -> None:
    replies = parse_packet_trace(_trace("discovery"))
    assert {r.kind for r in replies} == {"arp"}
    times = ReplyTimes.from_trace(replies, nmap_start_s=10.0)
    # ARP answers from the three other hosts, long before the stage's 1.96 s end.
    assert times.hosts == pytest.approx({"10.0.0.2": 10.6342, "10.0.0.3": 10.0212,
                                         "10.0.0.4": 10.0210})
    assert "10.0.0.1" not in times.hosts and not times.ports


def test_packet_trace_open_ports_from_syn_acks_and_completed_connects() -> None:
    syn = ReplyTimes.from_trace(parse_packet_trace(_trace("syn")), 0.0)
    assert syn.ports == pytest.approx({("10.0.0.4", 502): 0.1807, ("10.0.0.2", 80): 0.1807})
    assert syn.hosts["10.0.0.3"] < 1.0  # a RST is the host answering, no open port
    conn = parse_packet_trace(_trace("connect"))
    open_ = {(r.address, r.port) for r in conn if r.port is not None}
    assert open_ == {("10.0.0.4", 502), ("10.0.0.2", 80)}
    assert any(r.address == "10.0.0.4" and r.port is None for r in conn)  # refused: 80, 22
    # "Operation now in progress" is nmap's own connect() call, not an answer.
    assert len(conn) == sum(1 for line in _trace("connect").splitlines()
                            if "=> Connected" in line or "=> Connection refused" in line)


def test_icmp_answers_and_foreign_lines() -> None:
    text = ("SENT (0.0100s) ICMP [10.0.0.66 > 10.0.0.150 Echo request (type=8/code=0) id=1 "
            "seq=0] IP [ttl=41 id=1 iplen=28 ]\n"
            "RCVD (0.0125s) ICMP [10.0.0.150 > 10.0.0.66 Echo reply (type=0/code=0) id=1 "
            "seq=0] IP [ttl=64 id=2 iplen=28 ]\n"
            "NSOCK INFO [0.3000s] nsock_iod_new2(): nsock_iod_new (IOD #1)\n"
            "Nmap scan report for 10.0.0.150\n")
    assert [(r.kind, r.address, r.t_s) for r in parse_packet_trace(text)] == [
        ("icmp", "10.0.0.150", 0.0125)]


def test_findings_timed_at_the_answer_not_at_the_stage_end() -> None:
    findings = Findings(SCOPE, {"10.0.0.1"})
    replies = ReplyTimes.from_trace(parse_packet_trace(_trace("discovery")), 0.5)
    findings.merge_nmap(_run("discovery"), 2.5, "discovery", replies)
    syn = ReplyTimes.from_trace(parse_packet_trace(_trace("syn")), 2.6)
    findings.merge_nmap(_run("syn"), 3.0, "syn", syn)
    by_ip = {f["address"]: f for f in findings.to_list()}
    assert by_ip["10.0.0.4"]["first_seen_s"] == pytest.approx(0.521)
    assert by_ip["10.0.0.2"]["first_seen_s"] == pytest.approx(1.1342)
    assert by_ip["10.0.0.4"]["services"][0]["first_seen_s"] == pytest.approx(2.7807)
    # Without a trace (or without the host in it) the stage's end is the time, as before.
    plain = Findings(SCOPE, {"10.0.0.1"})
    plain.merge_nmap(_run("discovery"), 2.5, "discovery")
    assert {f["first_seen_s"] for f in plain.to_list()} == {2.5}
