"""The benchmark's pure parts: option parsing, the protected star, /proc and tool parsers."""

from __future__ import annotations

import json
import math

import pytest

from common.errors import UserError
from experiments import bench
from experiments.registry import get_experiment
from experiments.spec import resolve_config


def test_registered_and_quick_is_small() -> None:
    exp = get_experiment("bench")
    cfg = resolve_config(exp, None, {}, quick=True)
    assert bench.parse_counts(cfg["sizes"], "sizes") == [10, 20]
    assert bench.parse_counts(cfg["protected"], "protected", 1) == [2]
    assert exp.conditions is not None and exp.conditions(cfg) == list(bench.PARTS)


def test_parts_and_counts_refuse_bad_values() -> None:
    assert bench.parse_parts("hopping,bringup,hopping") == ["hopping", "bringup"]
    assert bench.parse_parts("all") == list(bench.PARTS)
    with pytest.raises(UserError, match="unknown part 'boot'"):
        bench.parse_parts("boot")
    with pytest.raises(UserError, match="out of range"):
        bench.parse_counts("10,251", "sizes")
    with pytest.raises(UserError, match="not an integer"):
        bench.parse_counts("ten", "sizes")
    with pytest.raises(UserError, match="unknown engine"):
        bench.parse_engines("pox")


@pytest.mark.parametrize("k", [2, 10, 50])
def test_protected_star_plan(k: int) -> None:
    plan = bench.protected_star_plan(k)
    assert len(plan.protected) == k
    assert plan.attacker is not None and not plan.attacker.authorized
    assert [h.name for h in plan.hosts if h.authorized] == [f"h{k + 1}"]
    assert plan.hosts_with_role("hmi")[0].name == f"h{k + 1}"
    # rhm needs more virtual addresses than protected hosts
    assert len(plan.virtual_pool) > k
    assert not set(plan.virtual_pool) & {h.ip for h in plan.hosts}


def test_proc_parsers() -> None:
    stat = "1234 (python -m (x)) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0"
    assert bench.cpu_ticks(stat) == 175
    assert bench.meminfo_kib("MemTotal: 100 kB\nMemAvailable:   2048 kB\n") == 2048
    with pytest.raises(ValueError):
        bench.meminfo_kib("MemTotal: 100 kB\n")
    assert bench.rss_kib("Name: x\nVmRSS:\t  5120 kB\n") == 5120
    assert bench.rss_kib("Name: kthread\n") == 0


def test_iperf_and_stats_parsers() -> None:
    ok = json.dumps({"end": {"sum_received": {"bits_per_second": 1.5e9}}})
    assert bench.iperf_bps(ok) == 1.5e9
    with pytest.raises(ValueError, match="refused"):
        bench.iperf_bps(json.dumps({"error": "unable to connect: Connection refused"}))
    log = ("x controller stats app=l2 {\"packet_ins\": 40, \"flows_installed\": 30}\n"
           "y controller stats app=det {\"handler_exceptions\": 0}\n")
    assert bench.controller_stats(log) == {"packet_ins": 40, "flows_installed": 30,
                                           "handler_exceptions": 0}


def test_burst_rate() -> None:
    samples = [(0.0, 1), (0.1, 5), (0.3, 21), (0.5, 21), (0.9, 21)]
    assert bench.burst_rate(samples) == (20, 0.3)
    added, t = bench.burst_rate([])
    assert added == 0 and math.isnan(t)


def test_plot_reads_only_csvs(tmp_path) -> None:
    (tmp_path / "bringup.csv").write_text(
        "trial,condition,n_hosts,kind,rep,build_s,connect_s,teardown_s,total_s\n"
        "1,bringup,10,ours,1,1,0.1,0.5,1.6\n1,bringup,10,plain,1,1,0,0.4,1.4\n"
        "1,bringup,20,ours,1,2,0.1,0.9,3.0\n1,bringup,20,plain,1,2,0,0.8,2.8\n")
    (tmp_path / "hop_latency.csv").write_text(
        "trial,condition,protected,host,latency_ms\n1,hopping,2,h1,3.5\n1,hopping,2,h2,4.0\n")
    stems = [s for s, _c in bench.plot(tmp_path)]
    assert stems == ["bringup", "hop_latency"]
    assert (tmp_path / "bringup.png").is_file() and (tmp_path / "hop_latency.svg").is_file()
