"""Progress over trials and stages: a bar on a terminal, plain lines otherwise, nothing when
quiet. Everything goes to stderr so ``--json`` output on stdout stays clean.

:class:`LoggedProgress` also appends every event to the bundle's ``raw/progress.jsonl``
(:mod:`dashboard.progresslog`), which the dashboard follows live and replays.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from dashboard import progresslog

log = logging.getLogger(__name__)


class Progress:
    """Plain lines (logs, CI, pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.trial = 0
        self.label = ""

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def notice(self, text: str) -> None:
        """A line the user needs even with ``--quiet`` (the dashboard's URL)."""
        self.message(text)

    def start(self, total: int) -> None:
        self.total = total

    def trial_started(self, run: int, label: str = "", trial: int = 0, condition: str = "",
                      raw_dir: str = "") -> None:
        """Run ``run`` of ``total`` begins. trial, condition, raw_dir (relative to the
        bundle): what the progress log records; the console shows ``label``."""
        self.trial = run
        self.label = label or f"trial {run}"
        self.message(f"[{run}/{self.total}] {self.label}: running")

    def stage(self, text: str) -> None:
        self.message(f"[{self.trial}/{self.total}] {self.label}: {text}")

    def trial_done(self, run: int, status: str, outcome: str = "") -> None:
        """outcome: ``ok``, ``invalid`` or ``failed`` (progresslog.OUTCOMES) for the log."""
        self.message(f"[{run}/{self.total}] {self.label}: {status}")

    def finish(self) -> None:
        pass


class QuietProgress(Progress):
    def message(self, text: str) -> None:
        pass

    def notice(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class BarProgress(Progress):
    """A rich progress bar over trials whose description shows the current stage."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = Console(file=self.stream)
        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=self.console, transient=False)
        self.task = None

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def start(self, total: int) -> None:
        super().start(total)
        self.bar.start()
        self.task = self.bar.add_task("starting", total=total)

    def trial_started(self, run: int, label: str = "", trial: int = 0, condition: str = "",
                      raw_dir: str = "") -> None:
        self.trial = run
        self.label = label or f"trial {run}"
        self.bar.update(self.task, description=f"{self.label}: starting")

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=f"{self.label}: {text}")

    def trial_done(self, run: int, status: str, outcome: str = "") -> None:
        self.message(f"[{run}/{self.total}] {self.label}: {status}")
        self.bar.advance(self.task)

    def finish(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, description="done")
        self.bar.stop()


class LoggedProgress(Progress):
    """Another progress (bar, lines or quiet) whose events also go, one JSON line each, to
    ``path`` (the bundle's ``raw/progress.jsonl``). A write that fails is logged once and the
    run goes on: the log is for watching, the bundle's CSVs are the results."""

    def __init__(self, inner: Progress, path: Path) -> None:
        super().__init__(inner.stream)
        self.inner = inner
        self.path = path
        self._write_failed = False

    def _append(self, event: str, **fields: Any) -> None:
        try:
            progresslog.append(self.path, event, run=self.trial, total=self.total,
                               label=self.label, **fields)
        except OSError as exc:
            if not self._write_failed:
                log.warning("cannot write the progress log %s: %s", self.path, exc)
            self._write_failed = True

    def message(self, text: str) -> None:
        self.inner.message(text)

    def notice(self, text: str) -> None:
        self.inner.notice(text)

    def start(self, total: int) -> None:
        self.total = total
        self.inner.start(total)
        self._append("start")

    def trial_started(self, run: int, label: str = "", trial: int = 0, condition: str = "",
                      raw_dir: str = "") -> None:
        self.trial, self.label = run, label or f"trial {run}"
        self.inner.trial_started(run, label, trial, condition, raw_dir)
        self._append("trial", trial=trial, condition=condition, raw_dir=raw_dir)

    def stage(self, text: str) -> None:
        self.inner.stage(text)
        self._append("stage", text=text)

    def trial_done(self, run: int, status: str, outcome: str = "") -> None:
        self.inner.trial_done(run, status, outcome)
        self._append("done", text=status, outcome=outcome)

    def finish(self) -> None:
        self.inner.finish()
        self._append("finish")


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress(stream)
    if stream.isatty():
        return BarProgress(stream)
    return Progress(stream)
