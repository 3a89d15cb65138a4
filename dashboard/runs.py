"""What one run folder holds, read incrementally: the data behind the dashboard's page.

A *run folder* is where one lab wrote its files (``controller.log`` marks it): lab mode's
``results/lab/<stamp>/``, or one trial (and condition) of a bundle, ``raw/trial-NNN[/COND]/``.
:class:`RunData` follows every file of one folder (names from :mod:`lab.defenses` and
:mod:`lab.devices`: ``<plc>_state.csv``, ``hmi_requests.csv``, ``hops_*.jsonl``,
``detections.jsonl``, ``*_outcome.json``, ``attacks/*.json``, ``fidelity.csv``) and keeps
each record with its wall-clock time.

Clocks: a PLC's ``t_s`` and the HMI's ``t_s`` count from their own start, the fidelity
monitor's from its own. Each process flushes a row as it writes it, so the file's
modification time minus its last ``t_s`` is that clock's start on the wall clock (the
smallest value seen is kept: a later poll can only be late). Hop and detector records carry
``time_unix_s`` themselves.

What it cannot do: place a file's rows on the wall clock before the file has a row, or after
its modification time was changed by a copy that did not keep it (``cp -p`` and ``rsync -a``
keep it).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from common import hoplog, jsonlines
from common.groundtruth import GroundTruthRow, read_ground_truth
from common.hoplog import HopRecord
from common.plan import AddressPlan, PlanError
from dashboard.follow import LineFollower
from plc.metrics import RequestRecord, records_from_csv
from plc.registers import MAPS, MAPS_BY_ID

RUN_MARKER = "controller.log"
STATE_SUFFIX = "_state.csv"
HMI_CSV = "hmi_requests.csv"
DETECT_LOG = "detections.jsonl"
FIDELITY_CSV = "fidelity.csv"
MAX_ROWS = 36_000  # per PLC: an hour at the default 100 ms scan; older rows are dropped
MAX_HMI_RECORDS = 200_000


class _Timed(Protocol):
    @property
    def t_s(self) -> float: ...


R = TypeVar("R", bound=_Timed)


class ClockAnchor:
    """The wall-clock start of a process clock, from file mtimes (see the module docstring)."""

    def __init__(self) -> None:
        self.start_unix_s = math.inf

    def observe(self, mtime_unix_s: float, last_t_s: float) -> None:
        if mtime_unix_s > 0:
            self.start_unix_s = min(self.start_unix_s, mtime_unix_s - last_t_s)

    @property
    def known(self) -> bool:
        return math.isfinite(self.start_unix_s)

    def to_unix(self, t_s: float) -> float:
        return self.start_unix_s + t_s


class CsvTail(Generic[R]):
    """The last ``max_rows`` records of a CSV (with a header) that a process appends to, and
    the wall-clock start of that process's clock; :meth:`poll` reads what was appended."""

    def __init__(self, follower: LineFollower, parse: Callable[[list[str]], list[R]],
                 max_rows: int) -> None:
        self.follower = follower
        self.parse = parse
        self.max_rows = max_rows
        self.rows: list[R] = []
        self.clock = ClockAnchor()

    def poll(self) -> list[R]:
        """The records appended since the last poll; a rewritten file starts over."""
        lines = self.follower.poll()
        if self.follower.reset:
            self.rows, self.clock = [], ClockAnchor()
        if not lines or self.follower.header is None:
            return []
        new = self.parse([self.follower.header, *lines])
        if new:
            self.rows.extend(new)
            del self.rows[:-self.max_rows]
            self.clock.observe(self.follower.mtime_unix_s, max(r.t_s for r in new))
        return new


class PlcTrack(CsvTail[GroundTruthRow]):
    """One PLC's ground truth. process: ``tank``/``pressure`` (from the ``process_id``
    column), "" before the first row."""

    def __init__(self, name: str, follower: LineFollower) -> None:
        super().__init__(follower, read_ground_truth, MAX_ROWS)
        self.name = name
        self.process = ""

    def poll(self) -> list[GroundTruthRow]:
        new = super().poll()
        if new and not self.process:
            self.process = process_of(new[-1])
        return new


@dataclass
class Attack:
    """An attack's outcome file (None while it runs: its log exists, its outcome not yet)."""

    name: str
    time_unix_s: float
    outcome: dict[str, Any] | None


class RunData:
    """Everything of one run folder read so far; :meth:`poll` reads what was appended."""

    def __init__(self, folder: Path, label: str = "") -> None:
        self.folder = folder
        self.label = label or folder.name
        self.plan: AddressPlan | None = None
        self.plcs: dict[str, PlcTrack] = {}
        self.hmi_tail = CsvTail(LineFollower(folder / HMI_CSV, has_header=True),
                                records_from_csv, MAX_HMI_RECORDS)
        self.hop_followers: dict[Path, LineFollower] = {}
        self.hops: list[HopRecord] = []
        self.detect_follower = LineFollower(folder / DETECT_LOG)
        self.detections: list[dict[str, Any]] = []
        self.fidelity: list[tuple[float, float]] = []  # (time_unix_s, idle share)
        self._fidelity_mtime = 0.0
        self.attacks: list[Attack] = []

    @property
    def hmi(self) -> list[RequestRecord]:
        """The HMI's request records read so far (the last :data:`MAX_HMI_RECORDS`)."""
        return self.hmi_tail.rows

    @property
    def hmi_clock(self) -> ClockAnchor:
        return self.hmi_tail.clock

    # --- reading -------------------------------------------------------------------------
    def poll(self) -> None:
        """Read what every file of the folder gained since the last poll."""
        if self.plan is None:
            self.plan = _load_plan(self.folder)
        for path in sorted(self.folder.glob(f"*{STATE_SUFFIX}")):
            name = path.name[:-len(STATE_SUFFIX)]
            if name not in self.plcs:
                self.plcs[name] = PlcTrack(name, LineFollower(path, has_header=True))
        for track in self.plcs.values():
            track.poll()
        self.hmi_tail.poll()
        self._poll_hops()
        lines = self.detect_follower.poll()
        if self.detect_follower.reset:
            self.detections = []
        self.detections += jsonlines.parse(lines)
        self._poll_fidelity()
        self.attacks = sorted(_attacks(self.folder), key=lambda a: a.time_unix_s)

    def _poll_hops(self) -> None:
        for path in self.folder.glob("hops_*.jsonl"):
            self.hop_followers.setdefault(path, LineFollower(path))
        changed = False
        for follower in self.hop_followers.values():
            lines = follower.poll()
            if lines or follower.reset:
                changed = True
        if changed:  # rare (one line per hop): re-read all logs, sorted by time
            for follower in self.hop_followers.values():
                follower.offset, follower.partial = 0, b""
            self.hops = hoplog.read(self.hop_followers)
            for follower in self.hop_followers.values():
                follower.poll()

    def _poll_fidelity(self) -> None:
        path = self.folder / FIDELITY_CSV
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime == self._fidelity_mtime:
            return
        self._fidelity_mtime = mtime
        self.fidelity = read_fidelity(path, mtime)

    # --- times ---------------------------------------------------------------------------
    def span_unix_s(self) -> tuple[float, float] | None:
        """(first, last) wall-clock time of any record of the run; None without records."""
        times = list(self._times())
        return (min(times), max(times)) if times else None

    def _times(self) -> Iterator[float]:
        for track in self.plcs.values():
            if track.rows and track.clock.known:
                yield track.clock.to_unix(track.rows[0].t_s)
                yield track.clock.to_unix(track.rows[-1].t_s)
        if self.hmi and self.hmi_clock.known:
            yield self.hmi_clock.to_unix(self.hmi[0].t_s)
            yield self.hmi_clock.to_unix(self.hmi[-1].t_s)
        for hop in self.hops:
            yield hop.time_unix_s
        for det in self.detections:
            t = det.get("time_unix_s")
            if isinstance(t, int | float):
                yield float(t)


def process_of(row: GroundTruthRow) -> str:
    """The process kind of a ground-truth row: its ``process_id`` column when it has one,
    else the register map with the most of its columns in the row ("" for none)."""
    if "process_id" in row:
        rmap = MAPS_BY_ID.get(int(row["process_id"]))
        return rmap.process if rmap else ""
    scores = {name: sum(r.column in row for r in m.registers) for name, m in MAPS.items()}
    best = max(scores, key=lambda name: scores[name], default="")
    return best if best and scores[best] else ""


def read_fidelity(path: Path, mtime_unix_s: float) -> list[tuple[float, float]]:
    """``fidelity.csv`` as (wall-clock time, idle share); anchored on the file's mtime."""
    try:
        with open(path, newline="") as f:
            rows = [(float(r["t_s"]), float(r["idle_share"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, TypeError, ValueError):
        return []
    if not rows:
        return []
    start = mtime_unix_s - rows[-1][0]
    return [(start + t, idle) for t, idle in rows]


def _load_plan(folder: Path) -> AddressPlan | None:
    for candidate in (folder, *folder.parents[:3]):
        path = candidate / "plan.json"
        if path.is_file():
            try:
                return AddressPlan.load(path)
            except (OSError, ValueError, KeyError, TypeError, PlanError):
                return None
    return None


def _attacks(folder: Path) -> Iterator[Attack]:
    """Outcome files of an experiment (``*_outcome.json``) and of lab mode (``attacks/``);
    a lab-mode attack whose log exists without an outcome is running."""
    outcomes = [*folder.glob("*_outcome.json"), *folder.glob("attacks/*.json")]
    for path in outcomes:
        try:
            mtime = path.stat().st_mtime
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        name = path.stem.removesuffix("_outcome")
        yield Attack(name, mtime, data if isinstance(data, dict) else {})
    for log in folder.glob("attacks/*.log"):
        if not log.with_suffix(".json").exists():
            try:
                yield Attack(log.stem, log.stat().st_mtime, None)
            except OSError:
                continue


def find_runs(folder: Path) -> list[Path]:
    """The run folders of a lab-mode run folder (itself) or a bundle (``raw/`` below)."""
    if (folder / RUN_MARKER).is_file():
        return [folder]
    raw = folder / "raw"
    found = [p.parent for p in (*raw.glob(f"*/{RUN_MARKER}"), *raw.glob(f"*/*/{RUN_MARKER}"))]
    return sorted(found)


def run_label(folder: Path, run_dir: Path) -> str:
    """``trial-001/rhm`` for a bundle's run, the folder's name for lab mode."""
    try:
        rel = run_dir.relative_to(folder / "raw")
    except ValueError:
        return run_dir.name
    return str(rel)
