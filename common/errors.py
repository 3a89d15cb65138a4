"""Errors a user can act on. The CLIs print their message as one line, never a traceback."""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_SETUP = 3
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: a wrong flag, key, type or range. Exit code 2."""

    exit_code = EXIT_USAGE


class SetupError(UserError):
    """The machine lacks something a run needs (root, Open vSwitch, nmap...). Exit code 3.

    The message says what to run to fix it.
    """

    exit_code = EXIT_SETUP


class LabError(RuntimeError):
    """The emulated network failed while running (a trial fails; the run goes on)."""


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived; unwinds like KeyboardInterrupt so teardown runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
