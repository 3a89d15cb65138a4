"""The runner's progress log: one JSON line per trial start, stage and end.

Written by the experiment runner into the bundle's ``raw/progress.jsonl`` while it runs, read
by the dashboard (live: the current trial, condition and stage; replay: which run folder was
active when). Every record has ``time_unix_s``, ``event`` (one of :data:`EVENTS`), ``run``
(1-based index over trials x conditions), ``total``, ``label`` and ``text``; a ``trial``
record also names the trial number, its condition and its run folder (``trial``,
``condition``, ``raw_dir``, relative to the bundle), a ``done`` record the trial's
``outcome`` (one of :data:`OUTCOMES`; ``text`` is the line the console showed). Files written
before ``trial``/``condition``/``outcome`` existed still parse (the fields are then empty).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import jsonlines

PROGRESS_LOG = "progress.jsonl"
EVENTS = ("start", "trial", "stage", "done", "finish")
OUTCOMES = ("ok", "invalid", "failed")


@dataclass(frozen=True)
class ProgressEvent:
    """One progress record. raw_dir: the trial's run folder relative to the bundle ("" when
    the record is not a trial start). trial: the 1-based trial number (0: not a trial
    record). condition: the trial's condition ("" when the experiment has none). outcome:
    of a ``done`` record, one of :data:`OUTCOMES`."""

    time_unix_s: float
    event: str
    run: int = 0
    total: int = 0
    label: str = ""
    text: str = ""
    raw_dir: str = ""
    trial: int = 0
    condition: str = ""
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ProgressEvent | None:
        """The record of an on-disk object; None when it is not one."""
        try:
            event = str(obj["event"])
            if event not in EVENTS:
                return None
            return cls(time_unix_s=float(obj["time_unix_s"]), event=event,
                       run=int(obj.get("run", 0)), total=int(obj.get("total", 0)),
                       label=str(obj.get("label", "")), text=str(obj.get("text", "")),
                       raw_dir=str(obj.get("raw_dir", "")), trial=int(obj.get("trial", 0)),
                       condition=str(obj.get("condition", "")),
                       outcome=str(obj.get("outcome", "")))
        except (KeyError, TypeError, ValueError):
            return None


def append(path: Path, event: str, now_unix_s: float | None = None, **fields: Any) -> None:
    """Add one record (the file is closed after each line, so a reader sees it at once)."""
    record = ProgressEvent(time.time() if now_unix_s is None else now_unix_s, event, **fields)
    jsonlines.append(path, record.to_json())


def parse(lines: Iterable[str]) -> list[ProgressEvent]:
    """The records of JSON lines in file order; torn lines and other objects skipped."""
    events = (ProgressEvent.from_json(obj) for obj in jsonlines.parse(lines))
    return [e for e in events if e is not None]
