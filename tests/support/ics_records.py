"""The running ICS's records as integration tests read them: the PLC's ground truth (its state
CSV) and the HMI's request records, with clocks and polling waits over both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from common.cli import wait_until
from common.groundtruth import GroundTruthRow, read_ground_truth_file
from plc.metrics import records_from_csv


def read_truth(path: Path) -> list[GroundTruthRow]:
    """plc.server ground-truth rows (a torn last row is skipped)."""
    return read_ground_truth_file(path)


def plc_clock_s(path: Path) -> float:
    """The PLC's clock now: ``t_s`` of its last ground-truth row."""
    rows = read_truth(path)
    assert rows, f"{path} has no rows yet"
    return rows[-1]["t_s"]


def hmi_clock_s(path: Path) -> float:
    """The HMI's clock now: ``t_s`` of its last request record."""
    with open(path, newline="") as f:
        records = records_from_csv(f)
    assert records, f"{path} has no records yet"
    return max(r.t_s for r in records)


def wait_hmi_polls(path: Path, plc: str, n_polls: int, timeout_s: float = 20.0) -> None:
    """Poll the HMI CSV until it holds ``n_polls`` ok reads of ``plc``."""

    def enough_polls() -> bool:
        if not path.exists():
            return False
        with open(path, newline="") as f:
            ok = [r for r in records_from_csv(f) if r.plc == plc and r.outcome == "ok"]
        return len(ok) >= n_polls

    if not wait_until(enough_polls, timeout_s, interval_s=0.1):
        raise AssertionError(f"the HMI did not poll {plc} {n_polls} times in {timeout_s:g} s")


def wait_truth(path: Path, predicate: Callable[[dict[str, float]], bool],
               timeout_s: float) -> dict[str, float] | None:
    """Poll the ground truth until its last row satisfies ``predicate``; that row or None."""

    def matching_row() -> dict[str, float] | None:
        rows = read_truth(path)
        return rows[-1] if rows and predicate(rows[-1]) else None

    return wait_until(matching_row, timeout_s, interval_s=0.1)
