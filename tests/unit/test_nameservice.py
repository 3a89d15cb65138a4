"""The name service without root: naming rule, bindings from hop logs, the TTL rule, the
answers, the client's cache, the server loop and the HMI following a name over UDP on
127.0.0.1 to a live PLC, and the name-service experiment's pure figures."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from dnslib import DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from common import dns, hoplog, jsonlines
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import AddressPlan, HostSpec, PlanError, SwitchSpec, ics_plan
from defenses import nameserver
from experiments import nameservice as exp
from plc.hmi import Hmi, parse_target
from plc.hmi_dns import NameResolver, parse_server
from plc.metrics import RequestRecord
from tests.support.plc_process import PlcProcess


def hop(host: str, new: str, t: float, old: str | None = None, real: str = "10.0.0.21"
        ) -> HopRecord:
    return HopRecord(time_unix_s=t, t_s=0.0, seq=1, host=host, real_ip=real,
                     old_virtual=old, new_virtual=new)


def test_naming_rule_round_trips_and_ignores_case_and_the_trailing_dot() -> None:
    assert dns.name_for("plc1") == "plc1.ics.lab"
    assert dns.host_for("PLC1.ics.lab.") == "plc1"
    assert dns.host_for("plc1.other.lab") is None
    assert dns.host_for("a.plc1.ics.lab") is None


def test_bindings_real_without_defense_and_latest_virtual_with_one() -> None:
    plan = ics_plan()
    assert dns.bindings(plan, [], defended=False)["plc1"].address == "10.0.0.21"
    hops = [hop("plc1", "10.0.0.150", 100.0, "10.0.0.120"), hop("plc1", "10.0.0.120", 90.0)]
    table = dns.bindings(plan, hops, defended=True)
    assert table["plc1"] == dns.Binding("plc1", "10.0.0.150", 100.0, virtual=True)
    assert "plc2" not in table  # protected and not yet addressed: no answer, never the real


def test_ttl_is_what_is_left_of_the_interval_and_never_more() -> None:
    b = dns.Binding("plc1", "10.0.0.150", since_unix_s=100.0, virtual=True)
    assert dns.ttl_s(b, 100.0, 5.0) == 5
    assert dns.ttl_s(b, 102.5, 5.0) == 2
    assert dns.ttl_s(b, 108.0, 5.0) == 0  # overdue: do not cache
    assert dns.ttl_s(b, 100.0, 5.0, jitter_s=2.0) == 3
    assert dns.ttl_s(b, 100.0, 300.0, max_ttl_s=60) == 60
    assert dns.ttl_s(dns.Binding("plc1", "10.0.0.21"), 0.0, 5.0, max_ttl_s=60) == 60


@given(st.floats(0.5, 120), st.floats(-10, 200), st.floats(0, 0.49))
def test_an_answers_ttl_never_exceeds_the_hop_interval(interval_s: float, now_off: float,
                                                        jitter_frac: float) -> None:
    table = {"plc1": dns.Binding("plc1", "10.0.0.150", 1000.0, virtual=True)}
    ans = dns.answer(dns.query("plc1.ics.lab", 9), table, 1000.0 + now_off, interval_s,
                     jitter_frac * interval_s, client=("10.0.0.1", 5353))
    assert ans is not None
    reply, record = ans
    assert record.ttl_s is not None and 0 <= record.ttl_s <= interval_s
    assert dns.parse_answer(reply, 9) == ("10.0.0.150", record.ttl_s)
    assert dns.QueryRecord.from_json(record.to_json()) == record


def test_answers_for_unknown_names_other_types_strangers_and_garbage() -> None:
    table = dns.bindings(ics_plan(), [], defended=False)
    for name, allowed, rcode in (("plc9.ics.lab", True, dns.NXDOMAIN),
                                 ("example.com", True, dns.REFUSED),
                                 ("plc1.ics.lab", False, dns.REFUSED)):
        ans = dns.answer(dns.query(name, 1), table, 0.0, 2.0, allowed=allowed)
        assert ans is not None and ans[1].rcode == rcode and ans[1].address == ""
        with pytest.raises(dns.DnsAnswerError, match=rcode):
            dns.parse_answer(ans[0], 1)
    aaaa = DNSRecord.question("plc1.ics.lab", "AAAA").pack()
    ans = dns.answer(aaaa, table, 0.0, 2.0)
    assert ans is not None and ans[1].rcode == dns.NOERROR and not DNSRecord.parse(ans[0]).rr
    assert dns.answer(b"\x00\x01garbage", table, 0.0, 2.0) is None
    reply = DNSRecord.parse(dns.query("plc1.ics.lab", 1)).reply().pack()
    assert dns.answer(reply, table, 0.0, 2.0) is None  # a reply is never answered
    good = dns.answer(dns.query("plc1.ics.lab", 1), table, 0.0, 2.0)
    assert good is not None
    with pytest.raises(dns.DnsAnswerError, match="not query 2"):
        dns.parse_answer(good[0], 2)


def test_cache_keeps_an_answer_for_its_ttl_and_ttl_zero_not_at_all() -> None:
    cache = dns.DnsCache()
    cache.put("plc1.ics.lab", "10.0.0.150", 2, now_s=10.0)
    assert cache.get("PLC1.ics.lab", 11.9) == "10.0.0.150"
    assert cache.get("plc1.ics.lab", 12.0) is None
    cache.put("plc1.ics.lab", "10.0.0.151", 0, now_s=20.0)
    assert cache.get("plc1.ics.lab", 20.0) is None


def test_client_is_added_without_moving_a_port_and_a_plants_own_is_reused() -> None:
    plan = ics_plan()
    with_client, name = dns.with_client(plan)
    client = with_client.host(name)
    assert (name, client.role, client.authorized) == ("hmi2", "hmi", False)
    assert client.ip not in plan.virtual_pool and plan.by_ip(client.ip) is None
    assert {k: v for k, v in with_client.edge_ports().items() if k != name} == \
        plan.edge_ports()
    assert dns.with_client(with_client) == (with_client, "hmi2")
    assert dns.server_host(plan) == "historian"


def test_server_host_falls_back_and_fails_in_one_line() -> None:
    hosts = (HostSpec("plc1", "plc", "10.0.0.21", "02:00:00:00:00:15", "s1", protected=True),)
    bare = AddressPlan("bare", "10.0.0.0/24", hosts, (SwitchSpec("s1", "1".zfill(16)),))
    with pytest.raises(PlanError, match="no unprotected historian"):
        dns.server_host(bare)


def test_server_refuses_bad_input_before_anything_runs(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    ics_plan().save(plan_path)
    never = lambda: pytest.fail("namespace checked after a bad argument")  # noqa: E731
    for argv, _text in ((["--listen", "10.0.0.99"], "not a host address"),
                       (["--listen", "10.0.0.13", "--allow", "192.168.1.1"], "outside"),
                       (["--listen", "10.0.0.13", "--jitter-s", "3"], "jitter"),
                       (["--listen", "nope"], "not an IPv4")):
        assert nameserver.main(["--plan", str(plan_path), *argv], namespace_check=never) == 2
    with pytest.raises(UserError, match="a name needs --resolver"):
        parse_target("plc1=plc1.ics.lab")
    assert parse_target("plc1=plc1.ics.lab:502", names=True).host == "plc1.ics.lab"
    with pytest.raises(UserError, match="expected IP"):
        parse_server("ns.ics.lab")
    assert parse_server("10.0.0.13") == ("10.0.0.13", 53)


def _loopback_plan() -> AddressPlan:
    """plc1's real address is unused; its virtual addresses are 127.0.0.1 (a live PLC) and
    127.0.0.2 (nothing listens)."""
    hosts = (HostSpec("plc1", "plc", "127.0.0.21", "02:00:00:00:00:15", "s1", protected=True),
             HostSpec("historian", "historian", "127.0.0.13", "02:00:00:00:00:0d", "s1",
                      authorized=True))
    return AddressPlan("lo", "127.0.0.0/24", hosts, (SwitchSpec("s1", "1".zfill(16)),),
                       virtual_pool=("127.0.0.1", "127.0.0.2", "127.0.0.3"))


def test_hmi_follows_a_name_across_a_hop_through_the_live_server(tmp_path: Path) -> None:
    hop_log = tmp_path / "hops.jsonl"
    query_log = tmp_path / "queries.jsonl"
    args = nameserver.build_parser().parse_args([
        "--plan", "unused", "--listen", "127.0.0.1", "--hop-log", str(hop_log),
        "--hop-interval-s", "2", "--query-log", str(query_log)])
    names = nameserver.NameTable(_loopback_plan(), [hop_log])
    plc = PlcProcess(tmp_path, "tank")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop: list[int] = []
    server = threading.Thread(target=nameserver.serve, args=(sock, names, args, stop))
    server.start()
    hoplog.append(hop_log, hop("plc1", "127.0.0.1", time.time(), real="127.0.0.21"))
    records: list[RequestRecord] = []
    try:
        resolver = NameResolver("127.0.0.1", sock.getsockname()[1], timeout_s=1.0)
        target = parse_target(f"plc1=plc1.ics.lab:{plc.port}", names=True)
        hmi = Hmi([target], 100.0, 500.0, records.append, resolver=resolver)

        async def drive() -> None:
            ev = asyncio.Event()
            task = asyncio.create_task(hmi.run(ev, 4.0))
            await asyncio.sleep(1.5)
            hoplog.append(hop_log, hop("plc1", "127.0.0.2", time.time(), "127.0.0.1",
                                       real="127.0.0.21"))
            await task

        asyncio.run(drive())
    finally:
        stop.append(1)
        server.join(5)
        sock.close()
        plc.stop()
    before = [r for r in records if r.t_s < 1.4]
    after = [r for r in records if r.t_s > 2.0 and r.function != "resolve"]
    assert before and all(r.outcome == "ok" and r.peer == "127.0.0.1" for r in before
                          if r.function != "resolve")
    assert after and all(r.peer == "127.0.0.2" and r.outcome != "ok" for r in after)
    lookups = [r for r in records if r.function == "resolve"]
    # TTL honoured: the first answer (hop just taken, interval 2 s) has TTL 1, so no lookup
    # for the next second; once the hop is due the TTL is 0 and every poll asks again.
    assert lookups[0].t_s < 0.05 and not [r for r in lookups if 0.05 < r.t_s < 0.9]
    assert {r.values for r in lookups} == {"127.0.0.1", "127.0.0.2"}
    queries = [dns.QueryRecord.from_json(o) for o in jsonlines.read(query_log)]
    assert queries and all(q is not None and q.ttl_s is not None and q.ttl_s <= 2
                           for q in queries)


def _rec(t_s: float, poll: int, function: str, outcome: str = "ok", peer: str = "",
         latency_ms: float = 1.0) -> RequestRecord:
    return RequestRecord(t_s, "plc1", poll, function, 0, 1, latency_ms, outcome, "", "", peer)


def test_client_figures_count_moves_failures_and_first_reads() -> None:
    records = [
        _rec(0.0, 0, "resolve", peer="10.0.0.13"), _rec(0.0, 0, "connect", peer="10.0.0.150",
                                                        latency_ms=20.0),
        _rec(0.0, 0, "read_coils", latency_ms=9.0), _rec(0.1, 1, "read_coils"),
        _rec(0.2, 2, "connect", "timeout", peer="10.0.0.160", latency_ms=500.0),
        _rec(0.3, 3, "connect", peer="10.0.0.160", latency_ms=30.0),
        _rec(0.3, 3, "read_coils", latency_ms=7.0), _rec(0.4, 4, "read_coils"),
    ]
    f = exp.client_figures(records)
    assert (f["availability"].k, f["availability"].n) == (4, 5)
    assert (f["failed_connections"], f["reconnects"], f["moves"]) == (1.0, 1.0, 1.0)
    assert f["connect_p50_ms"] == 25.0 and f["first_read_p50_ms"] == 8.0
    assert f["lookups"] == 1.0


def test_conditions_verdict_and_bad_options() -> None:
    cfg = {"defense": "none,rhm", "intervals_s": "2,1"}
    assert exp.conditions(cfg) == ["none", "rhm_hop1s", "rhm_hop2s"]
    assert exp.parse_condition("nat_hop10s") == ("nat", 10.0)
    assert exp.meets_target(10000, 10000) == "yes"
    assert exp.meets_target(998, 1000) == "no" and exp.meets_target(1000, 1000) == "point"
    lines = exp.verdict_lines({"rhm_hop2s": (396, 396), "none": (10, 10)})
    assert lines[0].startswith("none:") and "396/396" in lines[1]
    with pytest.raises(UserError, match="unknown defense"):
        exp.conditions({"defense": "rhm,moat", "intervals_s": "2"})
    with pytest.raises(UserError, match="hop-jitter"):
        exp._check({"defense": "rhm", "intervals_s": "2", "hop_jitter_s": 2.0}, ics_plan())

