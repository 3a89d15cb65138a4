"""Where a snapshot's data comes from: a folder being written (live) or a finished bundle
(replay at speed 1 to 20).

:class:`LiveSource` follows the newest run folder (lab mode's, or the bundle trial the
runner's progress log names) and samples the host CPU from ``/proc/stat``;
:class:`ReplaySource` reads every run of a bundle once and plays its wall-clock timeline
back: at replay time T the page shows what a live page showed at T.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard import progresslog, snapshot
from dashboard.follow import LineFollower
from dashboard.progresslog import ProgressEvent
from dashboard.runs import RunData, find_runs, run_label
from lab.fidelity import PROC_STAT, StatReading, idle_share, parse_proc_stat

CPU_HISTORY = 3600
MAX_SPEED = 20.0


def progress_path(folder: Path) -> Path:
    """The runner's progress log of a bundle (``raw/progress.jsonl``)."""
    return folder / "raw" / progresslog.PROGRESS_LOG


class LiveSource:
    """A folder a lab or an experiment is writing. window_s: the charts' history."""

    mode = "live"

    def __init__(self, folder: Path, window_s: float = snapshot.DEFAULT_WINDOW_S,
                 read_stat: Callable[[], str] | None = None) -> None:
        self.folder = folder
        self.window_s = window_s
        self.runs: dict[Path, RunData] = {}
        self.progress = LineFollower(progress_path(folder))
        self.events: list[ProgressEvent] = []
        self.cpu: list[tuple[float, float]] = []
        self._read_stat = read_stat or (lambda: PROC_STAT.read_text())
        self._last_stat: StatReading | None = None

    def current_run(self) -> RunData | None:
        """The run the progress log started last; otherwise the newest run folder."""
        for path in find_runs(self.folder):
            self.runs.setdefault(path, RunData(path, run_label(self.folder, path)))
        started = [e.raw_dir for e in self.events if e.event == "trial" and e.raw_dir]
        if started:
            run = self.runs.get(self.folder / started[-1])
            if run is not None:
                return run
        return self.runs[max(self.runs)] if self.runs else None

    def _sample_cpu(self, now_unix_s: float) -> None:
        try:
            reading = parse_proc_stat(self._read_stat())
        except (OSError, ValueError):
            return
        if self._last_stat is not None:
            if reading.total.total_ticks > self._last_stat.total.total_ticks:
                self.cpu.append((now_unix_s, idle_share(self._last_stat.total, reading.total)))
                del self.cpu[:-CPU_HISTORY]
        self._last_stat = reading

    def snapshot(self, now_unix_s: float | None = None) -> dict[str, Any]:
        """Read what was appended, then the snapshot as of now."""
        now = time.time() if now_unix_s is None else now_unix_s
        self.events += progresslog.parse(self.progress.poll())
        run = self.current_run()
        if run is not None:
            run.poll()
        self._sample_cpu(now)
        return snapshot.build(run, self.events, self.cpu, now, self.window_s, mode=self.mode,
                              folder=str(self.folder))


class ReplaySource:
    """A finished bundle (or lab-mode run folder) played back at ``speed`` (1-20).

    The timeline runs from the first to the last record of any run; the current run at T is
    the last one the progress log started by T (without a progress log: the last whose
    first record is at or before T).
    """

    mode = "replay"

    def __init__(self, folder: Path, speed: float = 1.0,
                 window_s: float = snapshot.DEFAULT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1.0 <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between 1 and {MAX_SPEED:g}")
        self.folder = folder
        self.speed = speed
        self.window_s = window_s
        self._clock = clock
        self.runs = [RunData(p, run_label(folder, p)) for p in find_runs(folder)]
        for run in self.runs:
            run.poll()
        self.events = progresslog.parse(LineFollower(progress_path(folder)).poll())
        spans = [s for s in (r.span_unix_s() for r in self.runs) if s is not None]
        times = [t for s in spans for t in s] + [e.time_unix_s for e in self.events]
        self.start_unix_s = min(times) if times else 0.0
        self.end_unix_s = max(times) if times else 0.0
        self._t0 = clock()

    @property
    def duration_s(self) -> float:
        return self.end_unix_s - self.start_unix_s

    def replay_time(self) -> float:
        """The timeline's wall-clock time now (stops at the end)."""
        elapsed = (self._clock() - self._t0) * self.speed
        return min(self.end_unix_s, self.start_unix_s + elapsed)

    def run_at(self, t_unix_s: float) -> RunData | None:
        by_dir = {run_label(self.folder, r.folder): r for r in self.runs}
        started = [e.raw_dir for e in self.events
                   if e.event == "trial" and e.time_unix_s <= t_unix_s and e.raw_dir]
        for raw_dir in reversed(started):
            label = run_label(self.folder, self.folder / raw_dir)
            if label in by_dir:
                return by_dir[label]
        current = None
        for run in self.runs:
            span = run.span_unix_s()
            if span is not None and span[0] <= t_unix_s:
                if current is None or span[0] >= (current.span_unix_s() or (0.0,))[0]:
                    current = run
        return current or (self.runs[0] if self.runs else None)

    def snapshot(self, now_unix_s: float | None = None) -> dict[str, Any]:
        """The snapshot at replay time (or at ``now_unix_s`` on the bundle's clock)."""
        t = self.replay_time() if now_unix_s is None else now_unix_s
        run = self.run_at(t)
        cpu = run.fidelity if run is not None else []
        return snapshot.build(run, self.events, cpu, t, self.window_s, mode=self.mode,
                              folder=str(self.folder), speed=self.speed,
                              replay={"start_unix_s": self.start_unix_s,
                                      "end_unix_s": self.end_unix_s,
                                      "finished": t >= self.end_unix_s})
