"""recon's attacker dimension: conditions, option checks, the random attack phase, the
persistent attacker's progress rows."""

from __future__ import annotations

import csv

import pytest

from common.errors import UserError
from common.plan import ics_plan
from common.requestlog import RequestRecord
from experiments import mtd
from experiments.recon import check, condition_attacker, conditions, split_condition
from experiments.recon_attackers import (
    attack_phase_s,
    parse_attackers,
    plot_persistent,
    progress_rows,
)
from experiments.scoring import AttackAttempt

BASE = {"defense": "none,rhm", "scanner": "nmap", "hop_interval_s": 2.0}


def test_conditions_are_defense_times_attacker() -> None:
    assert conditions({**BASE, "attacker": "staged"}) == ["none", "rhm"]
    assert conditions({**BASE, "attacker": "staged,fast"}) == [
        "none+staged", "none+fast", "rhm+staged", "rhm+fast"]
    both = conditions({**BASE, "scanner": "both", "attacker": "staged,aware"})
    assert both == ["none+staged+nmap", "none+staged+scapy", "none+aware",
                    "rhm+staged+nmap", "rhm+staged+scapy", "rhm+aware"]
    assert split_condition("rhm+staged+scapy", "both") == ("rhm", "scapy")
    assert split_condition("nat+fast", "nmap") == ("nat", "nmap")
    assert condition_attacker("nat+fast") == "fast"
    assert condition_attacker("rhm+scapy") == condition_attacker("rhm") == "staged"


def test_bad_attacker_and_jitter_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="unknown attacker 'slow'"):
        parse_attackers("fast,slow")
    assert parse_attackers("all") == ["staged", "fast", "persistent", "aware"]
    with pytest.raises(UserError, match="--hop-jitter-s 2: must be below"):
        check({**BASE, "attacker": "fast", "hop_jitter_s": 2.0}, ics_plan())


def test_attack_phase_is_uniform_in_the_interval_and_seeded() -> None:
    phases = [attack_phase_s(seed, "rhm+fast", 2.0, "rhm") for seed in range(200)]
    assert all(0 <= p < 2.0 for p in phases)
    assert min(phases) < 0.2 and max(phases) > 1.8
    assert attack_phase_s(7, "rhm+fast", 2.0, "rhm") == attack_phase_s(7, "rhm+fast", 2.0, "rhm")
    assert attack_phase_s(7, "rhm+fast", 2.0, "rhm") != attack_phase_s(7, "nat+fast", 2.0, "nat")
    # no defense, no schedule: the attack starts at once
    assert {attack_phase_s(seed, "none+fast", 2.0, "none") for seed in range(20)} == {0.0}


def test_persistent_progress_counts_distinct_plcs_found_and_reached() -> None:
    t0 = 1000.0
    spans = [mtd.AddressSpan("plc1", "10.0.0.150", t0, t0 + 2),
             mtd.AddressSpan("plc2", "10.0.0.160", t0, mtd.INF)]
    outcome = {"replies": [{"address": "10.0.0.150", "t_unix_s": t0 + 0.5},
                           {"address": "10.0.0.150", "t_unix_s": t0 + 2.5},  # retired
                           {"address": "10.0.0.160", "t_unix_s": t0 + 3.2}]}
    attempts = [AttackAttempt("persistent", "10.0.0.160", "10.0.0.66", 5000, t0 + 3.2,
                              t0 + 3.3, True)]
    records = [RequestRecord(t0 + 3.25, "plc2", "10.0.0.66", 5000, 1, 4, 1, True)]
    rows = progress_rows(outcome, attempts, records, spans, ["plc1", "plc2"], t0)
    by_t = {r["t_s"]: (r["plcs_found"], r["plcs_reached"]) for r in rows}
    assert by_t[0.0] == (0, 0) and by_t[1.0] == (1, 0) and by_t[3.0] == (1, 0)
    assert by_t[4.0] == (2, 1)


def test_persistent_figure_drawn_from_the_progress_csv(tmp_path) -> None:
    rows = [{"trial": 1, "condition": c, "t_s": t, "plcs_found": min(t, 2),
             "plcs_reached": min(t, 2) if c.startswith("none") else 0}
            for c in ("none+persistent", "rhm+persistent") for t in range(5)]
    with open(tmp_path / "persistent_progress.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    figs = plot_persistent(tmp_path)
    assert [stem for stem, _ in figs] == ["persistent_progress"]
    assert (tmp_path / "persistent_progress.png").stat().st_size > 1000
    assert (tmp_path / "persistent_progress.svg").exists()
    assert plot_persistent(tmp_path / "missing") == []
