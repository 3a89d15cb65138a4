"""JSON-lines files (one JSON object a line) as the run's processes write them.

Readers poll these files while a writer appends to them, so a torn last line, a blank line
or a line that is not an object is skipped, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def parse(lines: Iterable[str]) -> list[dict[str, Any]]:
    """JSON objects, one a line; blank lines, torn lines and non-objects are skipped."""
    records = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read(path: Path) -> list[dict[str, Any]]:
    """The objects of one JSON-lines file; a file that cannot be read has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse(f)
    except OSError:
        return []


def append(path: Path, record: dict[str, Any]) -> None:
    """Add one object as a line (keys sorted), closing the file so pollers see it at once."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def write(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """A whole file of objects (replacing it), one a line, keys sorted."""
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
