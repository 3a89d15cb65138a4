"""The pure half of experiments.mtd and recon's conditions: address spans from hop logs,
findings scored against who answered when, staleness (no root)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from common import hoplog
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import ics_plan
from experiments import mtd
from experiments.recon import conditions, split_condition

PLAN = ics_plan()
T0 = 1000.0
HOPS = [  # plc1 hops every 2 s, plc2 once (the last hop from a nat log)
    HopRecord(T0, 0.0, 1, "plc1", "10.0.0.21", None, "10.0.0.150", decision_ms=1.0),
    HopRecord(T0, 0.0, 2, "plc2", "10.0.0.22", None, "10.0.0.160", decision_ms=1.5),
    HopRecord(T0 + 2, 2.0, 3, "plc1", "10.0.0.21", "10.0.0.150", "10.0.0.151",
              decision_ms=2.0),
    HopRecord(T0 + 4, 4.0, 4, "plc1", "10.0.0.21", "10.0.0.151", "10.0.0.152",
              decision_ms=20.0, defense=hoplog.NAT),
]


def test_parse_defenses() -> None:
    assert mtd.parse_defenses("none,rhm") == ["none", "rhm"]
    assert mtd.parse_defenses("all") == ["none", "rhm", "nat"]
    assert mtd.parse_defenses("rhm, rhm") == ["rhm"]
    for bad in ("", "moat", "none,,x"):
        with pytest.raises(UserError):
            mtd.parse_defenses(bad)


def test_spans_without_defense_are_the_real_addresses() -> None:
    spans = mtd.address_spans(PLAN, HOPS, "none")
    assert mtd.owner_at(spans, "10.0.0.21", T0 + 100) == "plc1"
    assert mtd.owner_at(spans, "10.0.0.150", T0 + 1) is None


def test_spans_under_a_defense_follow_the_hops() -> None:
    spans = mtd.address_spans(PLAN, HOPS, "rhm")
    assert mtd.owner_at(spans, "10.0.0.21", T0 + 1) is None  # real address hidden
    assert mtd.owner_at(spans, "10.0.0.11", T0 + 1) == "hmi"  # unprotected: real address
    assert mtd.owner_at(spans, "10.0.0.150", T0 + 1.9) == "plc1"
    assert mtd.owner_at(spans, "10.0.0.150", T0 + 2.0) is None
    assert mtd.owner_at(spans, "10.0.0.152", T0 + 500) == "plc1"
    assert mtd.owner_at(spans, "10.0.0.160", T0 + 500) == "plc2"


def test_findings_scored_and_going_stale() -> None:
    spans = mtd.address_spans(PLAN, HOPS, "rhm")
    found = [mtd.Finding("10.0.0.11", T0 + 1), mtd.Finding("10.0.0.150", T0 + 1),
             mtd.Finding("10.0.0.160", T0 + 1), mtd.Finding("10.0.0.199", T0 + 1)]
    truth = {h.name for h in PLAN.hosts if h.name != "attacker"}
    score = mtd.score_findings(found, spans, truth)
    assert score.precision == pytest.approx(3 / 4)  # .199 never answered
    assert score.recall == pytest.approx(3 / 5)  # hmi, plc1, plc2 of five
    assert score.owners["10.0.0.150"] == "plc1" and score.owners["10.0.0.199"] is None
    assert mtd.valid_share(found, spans, T0 + 1.5) == pytest.approx(3 / 4)
    assert mtd.valid_share(found, spans, T0 + 2.5) == pytest.approx(2 / 4)  # plc1 hopped
    curve = mtd.staleness_curve(found, spans, T0 + 1, [0.0, 0.5, 1.0, 1.5])
    assert [v for _t, v in curve] == pytest.approx([0.75, 0.75, 0.5, 0.5])
    assert math.isnan(mtd.valid_share([], spans, T0))


def test_hop_latencies_skip_first_assignments() -> None:
    assert mtd.hop_latencies_ms(HOPS) == [2.0, 20.0]


def test_read_hop_log_sorts_and_skips_torn_lines(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(json.dumps(HOPS[2].to_json()) + "\n" + json.dumps(HOPS[0].to_json())
                 + "\n{\"host\": \"pl")
    b.write_text(json.dumps(HOPS[1].to_json()) + "\nnot json\n")
    recs = hoplog.read([a, b, tmp_path / "missing.jsonl"])
    assert [r.new_virtual for r in recs] == ["10.0.0.150", "10.0.0.160", "10.0.0.151"]


def test_hop_log_round_trip_and_old_logs(tmp_path: Path) -> None:
    """Each defense's records survive the disk; logs written before the one record (rhm's
    and nat's own key sets) read the same."""
    path = tmp_path / "hops.jsonl"
    nat = HopRecord(T0, 0.0, 1, "plc1", "10.0.0.21", None, "10.0.0.150", 1, 3.5, hoplog.NAT,
                    rules_installed=2, rules_removed=0, addresses_added=1, late_ms=0.2,
                    rules=("a", "b"))
    rhm = HopRecord(T0 + 1, 1.0, 2, "plc2", "10.0.0.22", "10.0.0.160", "10.0.0.161", 0, None,
                    flows_installed=3, flows_deleted=1, switches=2)
    hoplog.write(path, [nat, rhm])
    assert hoplog.read([path]) == [nat, rhm]
    old_rhm = {"time_unix_s": T0, "t_s": 0.0, "seq": 1, "host": "plc1",
               "real_ip": "10.0.0.21", "old_virtual": "10.0.0.150", "new_virtual": "10.0.0.151",
               "flows_installed": 4, "flows_deleted": 2, "switches": 2, "kept_flows": 0,
               "decision_to_flows_ms": 1.25}
    old_nat = {"time_unix_s": T0, "t_s": 0.0, "seq": 1, "host": "plc1", "real_ip": "10.0.0.21",
               "old_virtual": "10.0.0.150", "new_virtual": "10.0.0.151", "kept_flows": 1,
               "rules_installed": 2, "rules_removed": 2, "addresses_added": 1,
               "decision_to_rules_ms": 7.5, "late_ms": 0.5, "rules": ["x"],
               "defense": "nat_hop"}
    for old in (old_rhm, old_nat):
        record = hoplog.HopRecord.from_json(old)
        assert record is not None and record.to_json() == old
    assert mtd.hop_latencies_ms(hoplog.parse([json.dumps(old_rhm), json.dumps(old_nat)])) == [
        1.25, 7.5]


def test_recon_conditions_with_both_scanners() -> None:
    base = {"defense": "none,rhm", "scanner": "nmap"}
    assert conditions(base) == ["none", "rhm"]
    both = {**base, "scanner": "both"}
    assert conditions(both) == ["none+nmap", "none+scapy", "rhm+nmap", "rhm+scapy"]
    assert split_condition("rhm+scapy", "both") == ("rhm", "scapy")
    assert split_condition("nat", "scapy") == ("nat", "scapy")
    assert split_condition("", "nmap") == ("none", "nmap")


def test_staleness_measured_from_each_answer() -> None:
    """plc1 answered at .150 just before its hop (T0+2): stale 0.5 s later; plc2, found at the
    same moment, stays valid. From the scan's end (T0+1) both would look alike at 0.5 s."""
    spans = mtd.address_spans(PLAN, HOPS, "rhm")
    found = [mtd.Finding("10.0.0.150", T0 + 1.8), mtd.Finding("10.0.0.160", T0 + 1.8)]
    curve = mtd.staleness_since_found(found, spans, [0.0, 0.1, 0.5])
    assert [v for _t, v in curve] == pytest.approx([1.0, 1.0, 0.5])
    assert (curve[2][1].k, curve[2][1].n) == (1, 2)
    assert math.isnan(mtd.staleness_since_found([], spans, [0.0])[0][1])
