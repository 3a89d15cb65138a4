"""The dashboard without a network: file following, snapshots, replay, the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import hoplog
from common.groundtruth import GroundTruthRow
from dashboard import cli
from dashboard.follow import LineFollower
from dashboard.runs import RunData, find_runs, process_of
from dashboard.snapshot import chart_spec
from dashboard.source import LiveSource, ReplaySource
from tests.support.dashboard_runs import DURATION_S, T0_UNIX_S, level_at, write_bundle, write_run


def test_follower_keeps_a_torn_line_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,")
    f = LineFollower(path, has_header=True)
    assert f.poll() == ["1,2"] and f.header == "a,b"
    with open(path, "a") as out:
        out.write("4\n5,6\n")
    assert f.poll() == ["3,4", "5,6"]
    assert f.poll() == []


def test_follower_starts_over_when_the_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    f = LineFollower(path)
    assert len(f.poll()) == 2
    path.write_text('{"a": 3}\n')
    assert f.poll() == ['{"a": 3}'] and f.reset


def test_process_kind_and_chart_come_from_the_register_map() -> None:
    row = GroundTruthRow({"t_s": 0.0, "level_cm": 1.0, "pump_on": 1.0, "valve_open": 0.0})
    assert process_of(row) == "tank"
    spec = chart_spec("tank", list(row))
    assert spec.main == "level_cm" and spec.unit == "cm"
    assert set(spec.setpoints) == {"level_high_sp_cm", "level_low_sp_cm"}
    assert set(spec.alarm_limits) == {"level_hh_alarm_cm", "level_ll_alarm_cm"}
    assert "pump_on" in spec.bits and "alarm_high_high" in spec.alarms
    assert chart_spec("pressure", []).main == "pressure_bar"


def test_run_places_rows_on_the_wall_clock(tmp_path: Path) -> None:
    write_run(tmp_path)
    run = RunData(tmp_path)
    run.poll()
    track = run.plcs["plc1"]
    assert track.process == "tank"
    assert track.clock.to_unix(track.rows[-1].t_s) == pytest.approx(T0_UNIX_S + DURATION_S)
    assert run.span_unix_s() == pytest.approx((T0_UNIX_S, T0_UNIX_S + DURATION_S))


def test_replay_snapshot_at_a_moment(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    replay = ReplaySource(tmp_path, speed=20, clock=lambda: 0.0)
    snap = replay.snapshot(T0_UNIX_S + 45.0)
    assert snap["run"] == "trial-001/none"
    plc = snap["plcs"][0]
    assert plc["latest"]["level_cm"] == pytest.approx(level_at(45.0))
    assert plc["active_alarms"] == ["alarm_high_high"]  # 190 cm >= 180 cm
    assert max(plc["series"]["t"]) <= T0_UNIX_S + 45.0
    assert snap["progress"]["label"] == "trial 1 [none]"
    assert snap["progress"]["stage"] == "reconnaissance"
    hmi = snap["hmi"][0]
    assert hmi["outages"] == [[pytest.approx(T0_UNIX_S + 20), pytest.approx(T0_UNIX_S + 25)]]
    assert hmi["availability"] == pytest.approx(41 / 46, abs=1e-3)
    early = replay.snapshot(T0_UNIX_S + 10.0)["plcs"][0]
    assert early["active_alarms"] == []


def test_replay_shows_every_hop_of_the_hop_log(tmp_path: Path) -> None:
    hops = write_bundle(tmp_path)["rhm"]
    clock = [0.0]
    replay = ReplaySource(tmp_path, speed=20, clock=lambda: clock[0])
    seen: dict[int, str] = {}
    while True:
        snap = replay.snapshot()
        if snap["run"] == "trial-001/rhm":
            seen.update({h["seq"]: h["new_virtual"] for h in snap["network"]["hops"]})
        if snap["replay"]["finished"]:
            break
        clock[0] += 1.0 / 20  # one second of the timeline per step
    assert seen == {h.seq: h.new_virtual for h in hops}
    assert seen == {h.seq: h.new_virtual
                    for h in hoplog.read([tmp_path / "raw/trial-001/rhm/hops_rhm.jsonl"])}
    plc1 = [h for z in snap["network"]["zones"].values() for h in z if h["name"] == "plc1"]
    assert plc1[0]["virtual"] == hops[-1].new_virtual


def test_replay_clock_runs_at_its_speed(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    clock = [100.0]
    replay = ReplaySource(tmp_path, speed=10, clock=lambda: clock[0])
    clock[0] += 2.0
    assert replay.replay_time() == pytest.approx(replay.start_unix_s + 20.0)
    clock[0] += 1000.0
    assert replay.replay_time() == replay.end_unix_s
    with pytest.raises(ValueError):
        ReplaySource(tmp_path, speed=21)


def test_live_source_follows_the_progress_log_and_samples_cpu(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    stats = iter(["cpu 100 0 0 900 0 0 0 0\n", "cpu 150 0 0 950 0 0 0 0\n"])
    live = LiveSource(tmp_path, read_stat=lambda: next(stats))
    live.snapshot(T0_UNIX_S + 71.0)
    snap = live.snapshot(T0_UNIX_S + 100.0)
    assert snap["run"] == "trial-001/rhm" and snap["mode"] == "live"
    assert snap["cpu"]["busy_pct"] == 50.0 and not snap["cpu"]["saturated"]
    json.dumps(snap, allow_nan=False)


def test_find_runs_of_a_lab_folder_and_a_bundle(tmp_path: Path) -> None:
    write_run(tmp_path / "lab")
    assert find_runs(tmp_path / "lab") == [tmp_path / "lab"]
    write_bundle(tmp_path / "b")
    assert [p.name for p in find_runs(tmp_path / "b")] == ["none", "rhm"]


@pytest.mark.parametrize("argv, message", [
    (["/nonexistent/x"], "no such folder"),
    (["{tmp}", "--speed", "30"], "must be 1..20"),
    (["{tmp}", "--port", "70000"], "--port"),
    (["{tmp}", "--replay"], "not a bundle"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
