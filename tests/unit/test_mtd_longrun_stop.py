"""mtd-longrun's early stop and load over time, the pure parts: when every PLC counts as
reached (from the PLCs' request logs), the curve carried to the window's end and marked,
how much of the window ran, the load samples' arithmetic, the figures from the CSVs, and the
persistent attacker ending its rounds on SIGUSR1 with its whole outcome. The run itself:
tests/integration/test_mtd_longrun_quick.py."""

from __future__ import annotations

import argparse
import math
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from attacks import attacker_persistent as ap
from attacks.attacker_common import AttackerOutcome
from common.hostenv import AttackContext
from common.plan import ics_plan
from common.requestlog import RequestRecord
from experiments import mtd_longrun as ml
from experiments import mtd_longrun_watch as mw
from tests.support.bundles import write_csv

ATTACKER = "10.0.0.66"


def rec(t: float, plc: str, ip: str = ATTACKER, answered: bool = True) -> RequestRecord:
    return RequestRecord(t_unix_s=t, plc=plc, client_ip=ip, client_port=40000, unit_id=1,
                         function=4, transaction_id=1, answered=answered)


def test_every_plc_reached_only_by_the_attackers_answered_requests() -> None:
    records = [rec(10.0, "plc1", ip="10.0.0.11"),  # the HMI: not the attacker
               rec(11.0, "plc2", answered=False),  # not answered: not reached
               rec(5.0, "plc1"),                   # before the watch: not counted
               rec(12.0, "plc1"), rec(13.0, "plc1"), rec(15.0, "hist")]
    first = mw.first_reaches(records, ATTACKER, ["plc1", "plc2"], since_unix_s=8.0)
    assert first == {"plc1": 12.0}
    assert mw.all_reached_at(first, ["plc1", "plc2"]) is None
    first = mw.first_reaches([*records, rec(20.0, "plc2"), rec(18.0, "plc2")], ATTACKER,
                             ["plc1", "plc2"], since_unix_s=8.0)
    assert first == {"plc1": 12.0, "plc2": 18.0}
    assert mw.all_reached_at(first, ["plc1", "plc2"]) == 18.0  # the last PLC's first reach
    assert mw.all_reached_at(first, []) is None  # no PLC: never "all reached"


def test_the_log_tail_keeps_a_torn_last_line_for_later(tmp_path: Path) -> None:
    path = tmp_path / "plc1_requests.jsonl"
    tail = mw._Tail(path)
    assert tail.new_lines() == []  # not there yet
    path.write_text('{"a": 1}\n{"b":')
    assert tail.new_lines() == ['{"a": 1}']
    with open(path, "a") as f:
        f.write(' 2}\n')
    assert tail.new_lines() == ['{"b": 2}']
    assert tail.new_lines() == []


def progress(n: int) -> list[dict[str, Any]]:
    return [{"t_s": float(t), "plcs_found": min(t, 2), "plcs_reached": min(t, 2)}
            for t in range(n)]


def test_the_curve_is_carried_flat_to_the_window_end_and_marked() -> None:
    rows = ml.extend_curve(progress(4), window_s=10.0, ran_for_s=3.4, stopped=True)
    assert [r["t_s"] for r in rows] == [float(t) for t in range(11)]
    assert all(r["plcs_reached"] == 2 and r["plcs_found"] == 2 for r in rows[2:])
    assert [r["extended"] for r in rows] == [0, 0, 0, 0] + [1] * 7  # past 3.4 s: carried
    full = ml.extend_curve(progress(4), window_s=10.0, ran_for_s=10.2, stopped=False)
    assert len(full) == 11 and not any(r["extended"] for r in full)  # ran: observed
    long = ml.extend_curve(progress(14), window_s=10.0, ran_for_s=13.5, stopped=False)
    assert len(long) == 14  # a last round past the window is kept, not cut
    assert ml.extend_curve([], 10.0, 1.0, True) == []
    assert progress(4)[0] == {"t_s": 0.0, "plcs_found": 0, "plcs_reached": 0}  # not mutated


def test_run_span_from_the_attackers_outcome() -> None:
    outcome = {"attack_start_unix_s": 1_700_000_000.0, "ended_at": "2023-11-14T22:13:25Z",
               "rounds": [{"sweep": 0}, {"sweep": 1, "stopped_early_unix_s": 1_700_000_004.5}]}
    span = ml.run_span(outcome, 1_700_000_004.0, 600.0)
    assert span == {"window_end_s": 600.0, "ran_for_s": 5.0, "all_reached_s": 4.0,
                    "stopped_early_s": 4.5}
    ran_out = ml.run_span({**outcome, "rounds": [{"sweep": 0}]}, None, 600.0)
    assert math.isnan(ran_out["stopped_early_s"]) and math.isnan(ran_out["all_reached_s"])
    nothing = ml.run_span({}, None, 60.0)
    assert nothing["window_end_s"] == 60.0 and math.isnan(nothing["ran_for_s"])


def test_load_arithmetic() -> None:
    assert mw.cpu_pct(100, 150, wall_s=5.0, ticks_per_s=100.0) == pytest.approx(10.0)
    assert math.isnan(mw.cpu_pct(100, 150, wall_s=0.0, ticks_per_s=100.0))
    assert mw.flow_count("OFPST_AGGREGATE reply: packet_count=5 flow_count=17") == 17
    assert ml.flow_count is mw.flow_count  # one parser
    with pytest.raises(ValueError):
        mw.flow_count("ovs-ofctl: s1 is not a bridge or a socket")


def test_figures_mark_the_stop_and_draw_the_load_over_time(tmp_path: Path) -> None:
    stopped = [{"trial": 1, "condition": "pool8_hop1s", **r}
               for r in ml.extend_curve(progress(3), 8.0, 2.5, stopped=True)]
    ran = [{"trial": 1, "condition": "pool16_hop1s", **r}
           for r in ml.extend_curve(progress(2), 8.0, 8.3, stopped=False)]
    write_csv(tmp_path / "persistent_progress.csv", stopped + ran)
    rows = [{k: str(v) for k, v in r.items()} for r in stopped + ran]
    assert ml.stop_times(rows) == {"pool8_hop1s": 2.0}  # the last observed second
    later = [{k: str(v) for k, v in {"trial": 2, "condition": "pool8_hop1s", **r}.items()}
             for r in ml.extend_curve(progress(5), 8.0, 4.5, stopped=True)]
    assert ml.stop_times(rows + later) == {"pool8_hop1s": 4.0}  # the latest trial's stop
    figs = ml.plot(tmp_path)
    assert [Path(stem).name for stem, _ in figs] == ["cumulative_reached"]
    assert "stopped early" in figs[0][1]
    write_csv(tmp_path / "controller_load_over_time.csv",
              [{"trial": 1, "condition": c, "t_s": t, "controller_cpu_pct": 5.0 + t,
                "flows_total": 10 + t} for c in ("pool8_hop1s", "pool16_hop1s_decoys8")
               for t in (-5.0, 0.0, 5.0)])
    stems = [Path(stem).name for stem, _ in ml.plot(tmp_path)]
    assert stems == ["cumulative_reached", "controller_load_over_time"]
    assert (tmp_path / "controller_load_over_time.png").stat().st_size > 1000


def test_the_mtd_longrun_option_is_on_by_default() -> None:
    from experiments.registry import get_experiment
    param = get_experiment("mtd-longrun").param("stop_when_all_reached")
    assert param.kind == "bool" and param.default is True
    assert param.convert("0", "") is False


def test_the_persistent_attacker_ends_its_rounds_on_sigusr1(monkeypatch) -> None:
    """The round under way finishes, no new one starts, the outcome says when the stop came
    (and the process is not 'interrupted': run_attack writes it as a finished run)."""
    rounds: list[int] = []

    def sweep(ctx: AttackContext, _local: object, addresses: list[str], _tactic: str,
              n: int) -> list[Any]:
        rounds.append(n)
        if n == 2:  # the experiment's stop arrives during the third round
            os.kill(os.getpid(), signal.SIGUSR1)
        return []

    monkeypatch.setattr(ap, "sweep_and_exploit", sweep)
    monkeypatch.setattr(ap, "local_interface", lambda _plan: None)
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        args = argparse.Namespace(window_s=30.0, round_s=0.01, seed=0)
        out = AttackerOutcome(attack="attacker_persistent", targets=["10.0.0.100"])
        ctx = AttackContext(args=args, plan=ics_plan(), targets=("10.0.0.100",), outcome=out)
        ap._body(ctx)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert rounds == [0, 1, 2]
    assert [r["sweep"] for r in out.rounds] == [0, 1, 2]
    assert "stopped_early_unix_s" in out.rounds[-1]
    assert "stopped_early_unix_s" not in out.rounds[0]
    assert not ctx.stop_requested and not out.interrupted
