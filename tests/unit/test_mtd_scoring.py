"""The pure half of experiments.mtd and recon's conditions: address spans from hop logs,
findings scored against who answered when, staleness (no root)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from common.errors import UserError
from common.plan import ics_plan
from experiments import mtd
from experiments.recon import conditions, split_condition

PLAN = ics_plan()
T0 = 1000.0
HOPS = [  # plc1 hops every 2 s, plc2 once
    {"time_unix_s": T0, "host": "plc1", "old_virtual": None, "new_virtual": "10.0.0.150",
     "decision_to_flows_ms": 1.0},
    {"time_unix_s": T0, "host": "plc2", "old_virtual": None, "new_virtual": "10.0.0.160",
     "decision_to_flows_ms": 1.5},
    {"time_unix_s": T0 + 2, "host": "plc1", "old_virtual": "10.0.0.150",
     "new_virtual": "10.0.0.151", "decision_to_flows_ms": 2.0},
    {"time_unix_s": T0 + 4, "host": "plc1", "old_virtual": "10.0.0.151",
     "new_virtual": "10.0.0.152", "decision_to_rules_ms": 20.0},
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
    a.write_text(json.dumps(HOPS[2]) + "\n" + json.dumps(HOPS[0]) + "\n{\"host\": \"pl")
    b.write_text(json.dumps(HOPS[1]) + "\nnot json\n")
    recs = mtd.read_hop_log([a, b, tmp_path / "missing.jsonl"])
    assert [r["new_virtual"] for r in recs] == ["10.0.0.150", "10.0.0.160", "10.0.0.151"]


def test_recon_conditions_with_both_scanners() -> None:
    base = {"defense": "none,rhm", "scanner": "nmap"}
    assert conditions(base) == ["none", "rhm"]
    both = {**base, "scanner": "both"}
    assert conditions(both) == ["none+nmap", "none+scapy", "rhm+nmap", "rhm+scapy"]
    assert split_condition("rhm+scapy", "both") == ("rhm", "scapy")
    assert split_condition("nat", "scapy") == ("nat", "scapy")
    assert split_condition("", "nmap") == ("none", "nmap")
