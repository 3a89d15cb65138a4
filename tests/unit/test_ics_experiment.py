"""ics experiment: the process table from a PLC's ground-truth CSV (no root)."""

from __future__ import annotations

from pathlib import Path

from experiments.ics import _process_rows


def test_process_rows_keep_the_values_as_written_and_skip_a_torn_last_line(
        tmp_path: Path) -> None:
    path = tmp_path / "state.csv"
    path.write_text("t_s,pump_on,scan_count,level_cm\r\n"
                    "0.0,0,1,100.0\r\n"
                    "0.1003,1,2,99.9483\r\n"
                    "0.2,1,3")  # the PLC is still writing this one
    rows = _process_rows("plc1", "tank", path)
    assert [(r["t_s"], r["variable"], r["value"]) for r in rows] == [
        (0.0, "pump_on", "0"), (0.0, "scan_count", "1"), (0.0, "level_cm", "100"),
        (0.1003, "pump_on", "1"), (0.1003, "scan_count", "2"), (0.1003, "level_cm", "99.9483"),
    ]
    assert {(r["plc"], r["process"]) for r in rows} == {("plc1", "tank")}


def test_process_rows_of_a_missing_file_are_none(tmp_path: Path) -> None:
    assert _process_rows("plc1", "tank", tmp_path / "absent.csv") == []
