"""What ``--pcap`` and the lab-mode ``pcap`` command capture, and the hint files (no root)."""

from __future__ import annotations

import pytest

from common.errors import UserError
from common.plan import plan_for
from lab.capture import (
    CapturedFile,
    CaptureInfo,
    CaptureSpec,
    decode_as_text,
    next_capture_folder,
    parse_capture,
    readme_text,
    switch_ports,
    trunk_ports,
)


def test_switch_and_trunk_ports_come_from_the_topology() -> None:
    plan = plan_for("ics")
    ports = switch_ports(plan)
    assert set(ports) == {sw.name for sw in plan.switches}
    # Trunks are linked first, so each trunk is port 1 of its first switch.
    assert trunk_ports(plan) == ("s1-eth1",)
    assert "s1-eth1" in ports["s1"] and "s2-eth1" in ports["s2"]
    assert sum(len(p) for p in ports.values()) == 2 * len(plan.trunks) + len(plan.hosts)
    assert trunk_ports(plan_for("linear", 4)) == ("s1-eth1", "s2-eth2", "s3-eth2")


def test_parse_capture_words_hosts_and_ports() -> None:
    plan = plan_for("ics")
    hosts = tuple(h.name for h in plan.hosts)
    assert parse_capture("all", plan) == CaptureSpec(hosts=hosts, switch_ports=("s1-eth1",))
    assert parse_capture("hosts", plan) == CaptureSpec(hosts=hosts)
    assert parse_capture("trunks", plan) == CaptureSpec(switch_ports=("s1-eth1",))
    assert parse_capture("openflow", plan) == CaptureSpec()
    spec = parse_capture(" plc1 , s2-eth1,plc1", plan)
    assert spec == CaptureSpec(hosts=("plc1",), switch_ports=("s2-eth1",))
    assert spec.describe() == "plc1, s2-eth1, openflow"


@pytest.mark.parametrize("text,needle", [
    ("", "name what to capture"), ("plc9", "'plc9' is no host"), ("s1-eth99", "no port"),
    ("s7-eth1", "'s7-eth1' is no host"), ("all,nosuch", "nosuch")])
def test_parse_capture_bad_input_is_one_line(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle) as err:
        parse_capture(text, plan_for("ics"), flag="--pcap")
    assert "\n" not in str(err.value) and str(err.value).startswith("--pcap")


def test_hint_files_name_the_openflow_port() -> None:
    assert decode_as_text(40123).splitlines()[-1] == (
        "decode_as_entry: tcp.port,40123,(none),OpenFlow")
    info = CaptureInfo(openflow_port=40123, snaplen_bytes=0, files=(
        CapturedFile("plc1.pcap", "plc1-eth0", "host plc1"),
        CapturedFile("openflow.pcap", "lo", "controller channel", "tcp port 40123")))
    text = readme_text(info)
    assert "-d tcp.port==40123,openflow" in text
    assert "plc1.pcap" in text and "tcp port 40123" in text


def test_next_capture_folder(tmp_path) -> None:
    assert next_capture_folder(tmp_path) == tmp_path / "pcap"
    (tmp_path / "pcap").mkdir()
    assert next_capture_folder(tmp_path) == tmp_path / "pcap-2"


def test_lab_mode_pcap_option_is_checked_before_the_lab() -> None:
    from lab.options import parse_options

    assert parse_options(["--cli"], "lab").pcap is None
    assert parse_options(["--cli", "--pcap"], "lab").pcap == "all"
    assert parse_options(["--cli", "--pcap", "plc1,trunks"], "lab").pcap == "plc1,trunks"
    with pytest.raises(UserError, match="--pcap: 'h9' is no host"):
        parse_options(["--cli", "--topo", "classic", "--pcap", "h9"], "lab")
