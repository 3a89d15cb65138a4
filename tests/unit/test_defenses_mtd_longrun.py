"""mtd-longrun's pure parts (conditions, flow counts, the reached curves) and the widened pool
(common.plan.widen_pool) it runs on; the run itself: `experiments.run mtd-longrun --quick`."""

from __future__ import annotations

import pytest

from common.errors import UserError
from common.hopschedule import HopSchedule, MutationConfig, virtual_mac
from common.plan import PlanError, ics_plan, widen_pool
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
    assert ml.parse_condition("pool12_hop0.5s") == (12, 0.5)
    with pytest.raises(ValueError):
        ml.parse_condition("hop5s")
    for bad in ("16", "7", "x", ""):
        with pytest.raises(UserError, match="--pool-bits"):
            ml.parse_pool_bits(bad)
    exp = get_experiment("mtd-longrun")
    assert exp.param("window_s").quick == 60.0 and exp.param("pool_bits").quick == "8"


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
