"""Statistics and tool-output parsers (no root)."""

from __future__ import annotations

import math

import pytest

from experiments.parsers import ParseError, parse_ping
from experiments.scoring import score_hosts, score_ports
from reporting.stats import percentile, summarize, t_critical_95

PING_OK = """PING 10.0.0.21 (10.0.0.21) 56(84) bytes of data.
64 bytes from 10.0.0.21: icmp_seq=1 ttl=64 time=12.4 ms
64 bytes from 10.0.0.21: icmp_seq=2 ttl=64 time=1.52 ms
64 bytes from 10.0.0.21: icmp_seq=2 ttl=64 time=1.60 ms (DUP!)
64 bytes from 10.0.0.21: icmp_seq=4 ttl=64 time=1.31 ms

--- 10.0.0.21 ping statistics ---
4 packets transmitted, 3 received, +1 duplicates, 25% packet loss, time 603ms
rtt min/avg/max/mdev = 1.310/5.077/12.400/5.186 ms
"""

PING_DEAD = """PING 10.0.0.99 (10.0.0.99) 56(84) bytes of data.
From 10.0.0.11 icmp_seq=1 Destination Host Unreachable

--- 10.0.0.99 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms
"""


def test_parse_ping_replies_and_summary() -> None:
    r = parse_ping(PING_OK)
    assert (r.transmitted, r.received, r.loss_pct) == (4, 3, 25.0)
    assert r.rtts_ms == ((1, 12.4), (2, 1.52), (4, 1.31))  # the DUP! is not a second sample
    assert r.rtt_avg_ms == pytest.approx(5.077)
    assert r.rtt_mdev_ms == pytest.approx(5.186)


def test_parse_ping_total_loss() -> None:
    r = parse_ping(PING_DEAD)
    assert (r.transmitted, r.received, r.loss_pct) == (3, 0, 100.0)
    assert r.rtts_ms == () and r.rtt_avg_ms is None


@pytest.mark.parametrize("text", ["", "ping: connect: Network is unreachable\n",
                                  "bash: ping: command not found"])
def test_parse_ping_rejects_non_ping(text: str) -> None:
    with pytest.raises(ParseError):
        parse_ping(text)


def test_t_critical_values() -> None:
    assert t_critical_95(1) == pytest.approx(12.706, abs=1e-3)
    assert t_critical_95(4) == pytest.approx(2.776, abs=1e-3)
    assert t_critical_95(40) == pytest.approx(2.021, abs=1e-3)
    assert t_critical_95(120) == pytest.approx(1.980, abs=1e-3)
    assert t_critical_95(10**6) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        t_critical_95(0)


def test_summarize_ci() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.n == 5 and s.mean == 3.0 and s.median == 3.0
    assert s.std == pytest.approx(math.sqrt(2.5))
    assert s.ci95 == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)
    one = summarize([7.0])
    assert one.n == 1 and one.mean == 7.0 and math.isnan(one.ci95)
    assert summarize([]).n == 0
    assert summarize([1.0, math.nan, 3.0]).n == 2  # an unmeasured trial does not count


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 95) == 5
    assert percentile([1, 2, 3, 4, 5], 100) == 5
    assert math.isnan(percentile([], 50))


def test_score_hosts() -> None:
    s = score_hosts(["10.0.0.1", "10.0.0.2", "10.0.0.9"], ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.false_positives == ("10.0.0.9",) and s.missed == ("10.0.0.3",)
    assert math.isnan(score_hosts([], ["10.0.0.1"]).precision)
    assert score_hosts([], ["10.0.0.1"]).recall == 0.0


def test_score_ports_counts_only_scanned() -> None:
    truth = {"10.0.0.21": {502}, "10.0.0.22": {502, 8080}}
    found = {"10.0.0.21": {502, 22}, "10.0.0.22": set()}
    s = score_ports(found, truth, scanned=[22, 502])
    assert (s.expected, s.found_expected, s.unexpected) == (2, 1, 1)
    assert s.recall == 0.5


def test_modbus_identified_needs_an_answer_not_just_an_open_port() -> None:
    from experiments.scoring import modbus_identified

    nmap_hit = {"services": [{"port": 502, "details": {
        "modbus-discover": "sid 0x1: \n    Slave ID data: Pymodbus"}}]}
    exception_reply = {"services": [{"port": 502, "details": {
        "modbus-discover": "sid 0x1: \n    error: ILLEGAL FUNCTION"}}]}
    scapy_hit = {"services": [{"port": 502, "details": {"modbus-report-server-id": "x"}}]}
    open_only = {"services": [{"port": 502, "service": "modbus", "details": {}}]}
    other_port = {"services": [{"port": 80, "details": {"modbus-discover": "sid 0x1"}}]}
    assert modbus_identified(nmap_hit) and modbus_identified(exception_reply)
    assert modbus_identified(scapy_hit)
    assert not modbus_identified(open_only) and not modbus_identified(other_port)
    assert not modbus_identified({})
