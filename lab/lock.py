"""One run at a time: a lock file holding the owner's pid (and its start time).

A lock whose owner is gone (crash, SIGKILL) is stale and is cleared by the next run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from common.errors import UserError
from lab.runstate import STATE_DIR, pid_alive, proc_start_ticks

log = logging.getLogger(__name__)

_PREFIX = os.environ.get("SDNICS_SWITCH_PREFIX", "")
# Labs with a switch prefix do not collide with the unprefixed one: their own lock.
LOCK_PATH = STATE_DIR / (f"run-{_PREFIX}.lock" if _PREFIX else "run.lock")


class RunLock:
    """Context manager; raises UserError when another live run holds the lock."""

    def __init__(self, what: str, path: Path | None = None) -> None:
        self.what = what
        self.path = path or LOCK_PATH
        self.held = False

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        payload = json.dumps({"pid": pid, "start_ticks": proc_start_ticks(pid),
                              "what": self.what})
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner and pid_alive(owner.get("pid", -1), owner.get("start_ticks")):
                    raise UserError(
                        f"another run is active (pid {owner.get('pid')}: "
                        f"{owner.get('what', '?')}); wait for it to finish, or stop it"
                    ) from None
                log.warning("clearing stale run lock of dead pid %s",
                            owner.get("pid") if owner else "?")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(payload)
            self.held = True
            return self
        raise UserError(f"could not take the run lock {self.path}")

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc: object) -> None:
        if self.held:
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False
