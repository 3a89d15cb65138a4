"""SYN flood's pure parts: packets against scapy, the spoof pool against the plan, the HMI
window figures, the target-side counters. Nothing is sent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks.synflood import (
    counter_deltas,
    flood_effect,
    parse_proc_netstat,
    spoof_pool,
    syn_packet,
)
from common.checksum import internet_checksum
from common.plan import ics_plan
from common.scope import ScopeError
from plc.metrics import RequestRecord

addresses = st.integers(0, 2**32 - 1).map(
    lambda n: ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0)))


@settings(deadline=None)  # the first example imports scapy
@given(src=addresses, dst=addresses, sport=st.integers(0, 65535),
       dport=st.integers(0, 65535), seq=st.integers(0, 2**32 - 1), ip_id=st.integers(0, 65535))
def test_syn_packet_is_byte_for_byte_scapys(src: str, dst: str, sport: int, dport: int,
                                            seq: int, ip_id: int) -> None:
    from scapy.layers.inet import IP, TCP

    ours = syn_packet(src, dst, sport, dport, seq, ip_id=ip_id)
    theirs = bytes(IP(src=src, dst=dst, id=ip_id, ttl=64) /
                   TCP(sport=sport, dport=dport, seq=seq, flags="S", window=64240))
    assert ours == theirs


def test_checksums_verify() -> None:
    packet = syn_packet("10.0.0.150", "10.0.0.21", 40000, 502, 123456)
    assert internet_checksum(packet[:20]) == 0  # a header with its checksum sums to zero
    assert len(packet) == 40 and packet[33] == 0x02  # TCP flags: SYN only


def test_spoof_pool_never_leaves_the_plan_nor_uses_real_hosts() -> None:
    plan = ics_plan()
    pool = spoof_pool(plan, plan.subnet)
    real = {h.ip for h in plan.hosts}
    assert len(pool) == 254 - len(real)
    assert not real & set(pool)
    assert "10.0.0.0" not in pool and "10.0.0.255" not in pool
    assert spoof_pool(plan, "10.0.0.100/30") == ("10.0.0.101", "10.0.0.102")
    assert spoof_pool(plan, "10.0.0.150/32") == ("10.0.0.150",)


@pytest.mark.parametrize(("cidr", "needle"), [
    ("10.0.1.0/24", "outside"), ("0.0.0.0/0", "outside"), ("10.0.0.21/32", "no address left"),
    ("10.0.0.5/24", "host bits"), ("10.0.0.255", "broadcast"),
])
def test_spoof_pool_refusals(cidr: str, needle: str) -> None:
    with pytest.raises(ScopeError, match=needle):
        spoof_pool(ics_plan(), cidr)


def _records(latency_by_t: list[tuple[float, float, str]]) -> list[RequestRecord]:
    out = []
    for poll, (t_s, latency_ms, outcome) in enumerate(latency_by_t):
        out.append(RequestRecord(t_s, "plc1", poll, "read_coils", 0, 3, latency_ms, outcome))
        out.append(RequestRecord(t_s, "plc2", poll, "read_coils", 0, 2, 0.5, "ok"))
    return out


def test_flood_effect_splits_before_during_after() -> None:
    rows = [(t / 10, 1.0, "ok") for t in range(0, 50)]  # 0.0-4.9 s: healthy
    rows += [(t / 10, 20.0, "timeout" if t % 5 == 0 else "ok") for t in range(50, 100)]
    rows += [(t / 10, 1.0, "ok") for t in range(100, 150)]
    windows = {w.window: w for w in flood_effect(_records(rows), "plc1", 5.0, 10.0,
                                                 settle_s=1.0)}
    assert windows["before"].polls == 50 and windows["before"].availability == 1.0
    assert windows["during"].polls == 50 and windows["during"].availability == 0.8
    assert windows["during"].timeouts == 10 and windows["during"].latency_p50_ms == 20.0
    assert windows["after"].polls == 40 and windows["after"].start_t_s == 11.0
    assert windows["after"].end_t_s == 14.9 and windows["after"].availability == 1.0


def test_flood_effect_without_records_in_a_window_is_nan() -> None:
    windows = flood_effect(_records([(0.1, 1.0, "ok")]), "plc1", 5.0, 6.0)
    assert [w.polls for w in windows] == [1, 0, 0]
    assert math.isnan(windows[1].availability)


NETSTAT = """TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops
TcpExt: 10 0 2 3
IpExt: InNoRoutes InOctets
IpExt: 0 99
Broken: a b
Broken: 1
"""


def test_proc_netstat_counters_and_deltas() -> None:
    before = parse_proc_netstat(NETSTAT)
    assert before["TcpExt.SyncookiesSent"] == 10 and before["IpExt.InOctets"] == 99
    assert "Broken.a" not in before
    after = dict(before, **{"TcpExt.SyncookiesSent": 510})
    deltas = counter_deltas(before, after)
    assert deltas["TcpExt.SyncookiesSent"] == 500 and deltas["TcpExt.ListenDrops"] == 0
    assert deltas["TcpExt.TCPReqQFullDrop"] == 0  # missing on both sides
