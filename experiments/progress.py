"""Progress over trials and stages: a bar on a terminal, plain lines otherwise, nothing when
quiet. Everything goes to stderr so ``--json`` output on stdout stays clean."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """Plain lines (logs, CI, pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.trial = 0
        self.label = ""

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total = total

    def trial_started(self, run: int, label: str = "") -> None:
        self.trial = run
        self.label = label or f"trial {run}"
        self.message(f"[{run}/{self.total}] {self.label}: running")

    def stage(self, text: str) -> None:
        self.message(f"[{self.trial}/{self.total}] {self.label}: {text}")

    def trial_done(self, run: int, status: str) -> None:
        self.message(f"[{run}/{self.total}] {self.label}: {status}")

    def finish(self) -> None:
        pass


class QuietProgress(Progress):
    def message(self, text: str) -> None:
        pass


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

    def trial_started(self, run: int, label: str = "") -> None:
        self.trial = run
        self.label = label or f"trial {run}"
        self.bar.update(self.task, description=f"{self.label}: starting")

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=f"{self.label}: {text}")

    def trial_done(self, run: int, status: str) -> None:
        self.message(f"[{run}/{self.total}] {self.label}: {status}")
        self.bar.advance(self.task)

    def finish(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, description="done")
        self.bar.stop()


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress(stream)
    if stream.isatty():
        return BarProgress(stream)
    return Progress(stream)
