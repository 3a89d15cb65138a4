"""The one reader of a PLC's ground-truth CSV (written by ``python -m plc.server --state-csv``).

The CSV has one row per scan: ``t_s`` (the PLC's clock, seconds since it started) and one
column per process variable, named by the register map (``level_cm``, ``pump_on``...), all
numbers. Which columns a row has depends on the process (tank or pressure station), so a
row is a mapping from column name to value, with ``t_s`` typed as a field.

A file the PLC is still writing can be read whole (:func:`read_ground_truth_file`) or, to
bound the work on a long run, from its last bytes only (:func:`read_ground_truth_tail`).

What it cannot do: read a row that is not all numbers (a torn last line, which the PLC is
still writing, is skipped, as is any other row that does not parse).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

TIME_COLUMN = "t_s"


@dataclass(frozen=True)
class GroundTruthRow(Mapping[str, float]):
    """One scan of a PLC: every column as a float, ``t_s`` included (``row["level_cm"]``).

    values: column -> value, in the CSV's column order.
    """

    values: Mapping[str, float]

    @property
    def t_s(self) -> float:
        """The PLC's clock at this scan (seconds since the PLC started)."""
        return self.values[TIME_COLUMN]

    def __getitem__(self, column: str) -> float:
        return self.values[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def read_ground_truth(lines: Iterable[str]) -> list[GroundTruthRow]:
    """Ground-truth CSV text (header included) as rows in file order; torn rows skipped."""
    rows = []
    for row in csv.DictReader(lines):
        try:
            rows.append(GroundTruthRow({k: float(v) for k, v in row.items()}))
        except (TypeError, ValueError):
            continue
    return rows


def read_ground_truth_file(path: Path) -> list[GroundTruthRow]:
    """:func:`read_ground_truth` of a file (OSError when it cannot be opened)."""
    with open(path, newline="") as f:
        return read_ground_truth(f)


def read_ground_truth_tail(path: Path, max_bytes: int) -> list[GroundTruthRow]:
    """The rows in the last ``max_bytes`` of a ground-truth file the PLC may still be writing.

    The header is the file's first line (no rows until it is complete); a tail that starts
    mid-line drops that partial line, and a torn last line is skipped. OSError when the file
    cannot be opened.
    """
    with open(path, "rb") as f:
        header = f.readline()
        if not header.endswith(b"\n"):
            return []
        size = f.seek(0, os.SEEK_END)
        start = max(len(header), size - max_bytes)
        # One byte before the tail: a newline there means the tail starts on a whole line.
        f.seek(start - 1)
        chunk = f.read()
    body = chunk[chunk.find(b"\n") + 1:]
    return read_ground_truth([header.decode(errors="replace"),
                              *body.decode(errors="replace").splitlines()])
