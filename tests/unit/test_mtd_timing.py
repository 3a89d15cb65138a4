"""mtd-timing's pure parts: phase schedule, the model, scoring rows at the PLC, CSV plots."""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

import pytest

from attacks import attacker_timed
from attacks.attacker_timed import parse_gaps
from common.errors import UserError
from common.hoplog import HopRecord
from common.plan import ics_plan
from common.requestlog import RequestRecord
from experiments import mtd
from experiments.mtd_timing import (
    attempt_rows,
    cell_metrics,
    conditions,
    episode_starts,
    model_success,
    parse_gaps_param,
    plot,
)

T0 = 1_700_000_000.0
ATTACKER = "10.0.0.66"


def test_starts_realize_every_drawn_phase_without_idling_an_interval() -> None:
    rng = random.Random(3)
    phases = [rng.uniform(0, 30.0) for _ in range(30)]
    starts = episode_starts(phases, 30.0, T0, T0 + 100.0, 3.5)
    realized = sorted(round((s - T0) % 30.0, 6) for s in starts)
    assert realized == pytest.approx(sorted(phases))
    assert all(b - a >= 3.5 - 1e-9 for a, b in itertools.pairwise(starts))
    # Less than half of what a fresh uniform wait before each episode would cost.
    assert starts[-1] - starts[0] < 0.5 * 30 * (3.5 + 30.0 / 2)


def test_model_is_one_minus_delta_over_interval() -> None:
    assert model_success(0.0, 2.0) == 1.0
    assert model_success(1.0, 4.0) == 0.75
    assert model_success(9.0, 4.0) == 0.0


def test_gap_and_interval_options() -> None:
    assert parse_gaps("8,0,2,2") == [0.0, 2.0, 8.0]
    with pytest.raises(UserError, match="--gaps-s"):
        parse_gaps_param("-1")
    assert conditions({"intervals_s": "30,0.5"}) == ["hop0.5s", "hop30s"]


def _outcome() -> dict:
    rounds = [{"episode": 0, "planned_unix_s": T0 + 1, "scan_start_unix_s": T0 + 1,
               "scan_end_unix_s": T0 + 3, "found": [{"address": "10.0.0.150",
                                                    "reply_unix_s": T0 + 2.5}]},
              {"episode": 1, "planned_unix_s": T0 + 20, "scan_start_unix_s": T0 + 20,
               "scan_end_unix_s": T0 + 22, "found": []}]
    attempts = [{"tactic": "staged", "address": "10.0.0.150", "src_ip": ATTACKER,
                 "src_port": 30000 + int(g), "started_unix_s": T0 + 3 + g,
                 "ended_unix_s": T0 + 3.1 + g, "sent": g == 0, "episode": 0, "gap_s": g}
                for g in (0.0, 4.0)]
    return {"rounds": rounds, "attempts": attempts}


def test_rows_scored_at_the_target_log_and_no_target_counted_apart() -> None:
    plan = ics_plan()
    hops = [r for r in (HopRecord.from_json({"time_unix_s": T0 + t, "t_s": t, "seq": t,
                                             "host": "plc1", "real_ip": "10.0.0.21",
                                             "old_virtual": old, "new_virtual": new})
                        for t, old, new in ((0, None, "10.0.0.150"),
                                            (5, "10.0.0.150", "10.0.0.151"))) if r]
    assert len(hops) == 2
    spans = mtd.address_spans(plan, hops, "rhm")
    records = [RequestRecord(T0 + 3.05, "plc1", ATTACKER, 30000, 1, 4, 1, True)]
    rows = attempt_rows(_outcome(), records, spans, hops, "plc1", 5.0, [0.0, 4.0])
    by = {(r["episode"], r["gap_s"]): r for r in rows}
    assert by[(0, 0.0)]["reached"] and by[(0, 0.0)]["delta_s"] == pytest.approx(0.5)
    assert by[(0, 0.0)]["model_p"] == pytest.approx(0.9)
    assert by[(0, 0.0)]["phase_s"] == pytest.approx(2.5)
    # gap 4: the connect timed out at the moved address: found, not reached (a 0, not "none").
    assert by[(0, 4.0)]["target_found"] and not by[(0, 4.0)]["reached"]
    assert not by[(1, 0.0)]["target_found"]
    m = cell_metrics(rows)
    assert (m["gap0s_success"].k, m["gap0s_success"].n) == (1, 1)
    assert (m["gap4s_success"].k, m["gap4s_success"].n) == (0, 1)
    assert (m["gap4s_no_target"].k, m["gap4s_no_target"].n) == (1, 2)
    assert m["gap4s_model"] == pytest.approx(0.1)


def test_plots_from_the_csv_alone(tmp_path: Path) -> None:
    rows = [{"trial": 1, "condition": f"hop{i:g}s", "hop_interval_s": i, "gap_s": g,
             "episode": e, "target_found": True, "reached": e < 3, "model_p": 0.5,
             "delta_s": 1.0} for i in (2.0, 30.0) for g in (0.0, 2.0) for e in range(5)]
    with open(tmp_path / "timing_attempts.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert [s for s, _ in plot(tmp_path)] == ["timing_grid", "timing_model"]
    assert (tmp_path / "timing_grid.png").stat().st_size > 1000


def test_timed_attacker_refuses_bad_input_before_sending(tmp_path: Path, capsys) -> None:
    plan = tmp_path / "plan.json"
    ics_plan().save(plan)
    starts = tmp_path / "starts.json"
    starts.write_text("[1, 2]")
    base = ["--plan", str(plan), "--targets", "10.0.0.0/24", "--out", str(tmp_path / "o.json")]
    assert attacker_timed.main([*base, "--starts-file", str(starts), "--gaps-s", "99"]) == 2
    assert "--gaps-s 99" in capsys.readouterr().err
    assert attacker_timed.main([*base, "--starts-file", str(tmp_path / "none.json")]) == 2
    assert "--starts-file" in capsys.readouterr().err
    starts.write_text("{}")
    assert attacker_timed.main([*base, "--starts-file", str(starts)]) == 2
    assert not (tmp_path / "o.json").exists()
