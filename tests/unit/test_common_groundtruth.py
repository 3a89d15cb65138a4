"""The one PLC ground-truth reader: whole files, and the tail of a file still being written."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.groundtruth import read_ground_truth, read_ground_truth_file, read_ground_truth_tail

HEADER = "t_s,level_cm\r\n"  # plc.server writes with csv.writer: \r\n line ends


def _state_csv(path: Path, n_rows: int, torn: str = "") -> Path:
    path.write_text(HEADER + "".join(f"{i / 10:.1f},{i}\r\n" for i in range(n_rows)) + torn,
                    newline="")
    return path


def test_rows_are_floats_and_torn_rows_are_skipped() -> None:
    rows = read_ground_truth(["t_s,level_cm,pump_on", "0.1,100.5,1", "0.2,101", "x,1,0",
                              "0.3,102,0"])
    assert [r.t_s for r in rows] == [0.1, 0.3]
    assert dict(rows[0]) == {"t_s": 0.1, "level_cm": 100.5, "pump_on": 1.0}


def test_tail_skips_a_partial_first_line(tmp_path: Path) -> None:
    path = _state_csv(tmp_path / "state.csv", 1000)
    rows = read_ground_truth_tail(path, max_bytes=100)
    assert (rows[-1].t_s, rows[-1]["level_cm"]) == (99.9, 999)
    assert rows[0].t_s > 90 and all(r["level_cm"] == round(r.t_s * 10) for r in rows)
    rows = read_ground_truth_tail(path, max_bytes=10**6)
    assert rows[0].t_s == 0.0 and len(rows) == 1000
    assert rows == read_ground_truth_file(path)


def test_tail_starting_on_a_line_keeps_it(tmp_path: Path) -> None:
    path = _state_csv(tmp_path / "state.csv", 3)  # rows "0.0,0\r\n" "0.1,1\r\n" "0.2,2\r\n"
    rows = read_ground_truth_tail(path, max_bytes=len("0.1,1\r\n0.2,2\r\n"))
    assert [r.t_s for r in rows] == [0.1, 0.2]


def test_tail_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = _state_csv(tmp_path / "state.csv", 10, torn="1.0,")
    rows = read_ground_truth_tail(path, max_bytes=40)
    assert rows[-1].t_s == 0.9


def test_tail_without_a_whole_header_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.csv"
    path.write_text("t_s,lev")
    assert read_ground_truth_tail(path, max_bytes=100) == []
    path.write_text("")
    assert read_ground_truth_tail(path, max_bytes=100) == []
    with pytest.raises(OSError):
        read_ground_truth_tail(tmp_path / "absent.csv", max_bytes=100)
