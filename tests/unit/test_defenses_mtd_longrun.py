"""mtd-longrun's pure parts (conditions, flow counts, the reached curves) and the widened pool
(common.plan.widen_pool) it runs on; the run itself: `experiments.run mtd-longrun --quick`."""

from __future__ import annotations

import csv
import math

import pytest

from common.errors import UserError
from common.hopschedule import HopSchedule, MutationConfig, virtual_mac
from common.plan import PlanError, ics_plan, widen_pool
from experiments import mtd
from experiments import mtd_longrun as ml
from experiments.registry import get_experiment
from topologies.base import PlanTopo


def test_widened_pool_is_every_unused_address_and_hosts_keep_theirs() -> None:
    plan = ics_plan()
    wide = widen_pool(plan, 20)
    assert wide.subnet == "10.0.0.0/20" and wide.prefixlen == 20
    assert len(wide.virtual_pool) == 4094 - len(plan.hosts)
    assert {h.ip for h in wide.hosts} == {h.ip for h in plan.hosts}
    assert not {h.ip for h in wide.hosts} & set(wide.virtual_pool)
    assert "10.0.15.254" in wide.virtual_pool and "10.0.15.255" not in wide.virtual_pool
    topo = PlanTopo(wide)
    assert topo.nodeInfo("plc1")["ip"] == "10.0.0.21/20"
    macs = {virtual_mac(a) for a in wide.virtual_pool}
    assert len(macs) == len(wide.virtual_pool) and not macs & {h.mac for h in plan.hosts}
    HopSchedule(wide.protected, wide.virtual_pool, MutationConfig())  # a usable pool
    with pytest.raises(PlanError, match="/16 to /24"):
        widen_pool(plan, 25)
    with pytest.raises(PlanError):
        widen_pool(plan, 12)


def test_default_plan_and_schedule_unchanged_without_widening() -> None:
    plan = ics_plan()
    assert plan.subnet == "10.0.0.0/24" and plan.virtual_pool[0] == "10.0.0.100"
    assert len(plan.virtual_pool) == 100


def test_conditions_and_bad_input() -> None:
    cfg = {"pool_bits": "12,8,8", "intervals_s": "5,1"}
    assert ml.conditions(cfg) == ["pool8_hop1s", "pool8_hop5s", "pool12_hop1s",
                                  "pool12_hop5s"]
    assert ml.parse_condition("pool12_hop0.5s") == ml.Condition(12, 0.5, 0)
    for bad in ("hop5s", "pool8_hop5s_decoys", "pool8_hop5s_decoys-1", "pool8_hop5sdecoys8"):
        with pytest.raises(ValueError):
            ml.parse_condition(bad)
    for bad in ("17", "7", "x", "", "8.5"):
        with pytest.raises(UserError, match="--pool-bits"):
            ml.parse_pool_bits(bad)
    assert ml.parse_pool_bits("16,8") == [8, 16]
    exp = get_experiment("mtd-longrun")
    assert exp.param("window_s").quick == 60.0 and exp.param("pool_bits").quick == "8"
    assert exp.param("pool_bits").default == "8,12,16"  # the 2^8, 2^12, 2^16
    assert exp.param("decoys").default == "0,8" and exp.param("decoys").quick == "0"


def test_decoys_are_a_condition_named_and_parsed_back() -> None:
    cfg = {"pool_bits": "16,8", "intervals_s": "5", "decoys": "8,0"}
    names = ml.conditions(cfg)
    assert names == ["pool8_hop5s", "pool8_hop5s_decoys8", "pool16_hop5s",
                     "pool16_hop5s_decoys8"]
    assert [ml.parse_condition(n) for n in names] == [
        ml.Condition(8, 5.0, 0), ml.Condition(8, 5.0, 8), ml.Condition(16, 5.0, 0),
        ml.Condition(16, 5.0, 8)]
    assert all(ml.parse_condition(n).name == n for n in names)
    assert ml.conditions({"pool_bits": "8", "intervals_s": "1"}) == ["pool8_hop1s"]
    assert ml.Condition(12, 30.0, 8).label == "pool 2^12, hop 30 s, 8 decoys"
    assert ml.Condition(12, 30.0).label == "pool 2^12, hop 30 s, no decoys"
    assert ml.parse_decoys("0, 8,8") == [0, 8]
    for bad in ("-1", "1025", "x", "", "2.5"):
        with pytest.raises(UserError, match="--decoys"):
            ml.parse_decoys(bad)


def _check(**over: str) -> None:
    cfg = {"pool_bits": "8", "intervals_s": "5", "decoys": "0", "defense": "rhm",
           "hop_jitter_s": 0.0, **over}
    ml.check(cfg, ics_plan())


def test_decoys_refused_up_front_under_nat_and_when_they_do_not_fit() -> None:
    _check(decoys="0,8")
    _check(defense="nat")  # nat without decoys runs
    with pytest.raises(UserError, match=r"^--decoys 0,8: nat has no decoys"):
        _check(defense="nat", decoys="0,8")
    _check(pool_bits="8", decoys="245")  # 248 addresses, 2 protected, 1 spare
    with pytest.raises(UserError, match=r"--decoys: pool 2\^8: 246 decoys do not fit"):
        _check(pool_bits="8,16", decoys="246")
    _check(pool_bits="16", decoys="1024")


def test_flow_count_and_curves() -> None:
    text = "OFPST_AGGREGATE reply (OF1.3) (xid=0x2): packet_count=5 byte_count=9 flow_count=17"
    assert ml.flow_count(text) == 17
    with pytest.raises(ValueError):
        ml.flow_count("error")
    rows = [{"condition": "pool8_hop5s", "t_s": "0", "plcs_reached": "0"},
            {"condition": "pool8_hop5s", "t_s": "1", "plcs_reached": "2"},
            {"condition": "pool8_hop5s", "t_s": "1", "plcs_reached": "1"},
            {"condition": "pool8_hop5s", "t_s": "bad", "plcs_reached": "1"}]
    assert ml.reached_curves(rows) == {"pool8_hop5s": {0.0: [0.0], 1.0: [2.0, 1.0]}}


def test_plot_draws_one_line_per_condition_dashed_with_decoys(tmp_path) -> None:
    rows = [{"trial": 1, "condition": c, "t_s": t, "plcs_found": 0, "plcs_reached": min(t, 2)}
            for c in ("pool16_hop5s", "pool16_hop5s_decoys8") for t in range(4)]
    with open(tmp_path / "persistent_progress.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    figs = ml.plot(tmp_path)
    assert [stem for stem, _ in figs] == ["cumulative_reached"]
    assert (tmp_path / "cumulative_reached.png").stat().st_size > 1000
    svg = (tmp_path / "cumulative_reached.svg").read_text()
    assert "pool 2^16, hop 5 s, 8 decoys" in svg and "pool 2^16, hop 5 s, no decoys" in svg


def test_decoy_cost_counters() -> None:
    pool = frozenset({"10.0.1.5", "10.0.1.6", "10.0.1.7"})
    spans = [mtd.AddressSpan("plc1", "10.0.1.6", 100.0, 110.0),
             mtd.AddressSpan("hmi", "10.0.0.11", -math.inf)]
    replies = [{"address": "10.0.1.5", "t_unix_s": 101.0},   # a decoy
               {"address": "10.0.1.6", "t_unix_s": 105.0},   # plc1 then
               {"address": "10.0.1.6", "t_unix_s": 111.0},   # plc1's 1 s ago: a late answer
               {"address": "10.0.1.6", "t_unix_s": 121.0},   # plc1 left 11 s ago: a decoy
               {"address": "10.0.0.11", "t_unix_s": 101.0},  # a plan host, not the pool
               {"address": "10.0.1.7", "t_unix_s": 102.0}]
    assert ml.decoys_met(replies, spans, pool) == 3
    assert ml.decoys_met(replies, spans, pool, late_s=0.0) == 4
    assert ml.decoys_met([], spans, pool) == 0
    stats = {"packet_ins": 12364, "decoy_replies": 7, "floods": 3}
    assert ml.load_metrics(stats) == {"controller_packet_ins": 12364.0,
                                      "controller_decoy_answers": 7.0}
    assert ml.load_metrics({}) == {}
