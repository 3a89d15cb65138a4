"""Following files a process is still appending to: only the new complete lines each time.

A :class:`LineFollower` remembers how far it read, keeps a torn last line until its newline
arrives, and starts over when the file shrank (rewritten). The dashboard polls every file of
a run once per update, so a ten-minute log costs one read of what was appended, not of the
whole file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_READ_BYTES = 32 * 1024 * 1024  # one poll reads at most this much (a runaway file)


@dataclass
class LineFollower:
    """New complete lines of one file. header: its first line, kept when ``has_header``.

    reset: set by :meth:`poll` when the file was rewritten (the caller drops what it had).
    mtime_unix_s: the file's modification time at the last poll (0 before it exists).
    """

    path: Path
    has_header: bool = False
    header: str | None = None
    offset: int = 0
    partial: bytes = b""
    reset: bool = False
    mtime_unix_s: float = 0.0
    _ino: int = field(default=-1, repr=False)

    def poll(self) -> list[str]:
        """The complete lines appended since the last poll (header excluded)."""
        self.reset = False
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        if st.st_size < self.offset or (st.st_ino != self._ino and self._ino != -1):
            self.offset, self.partial, self.header, self.reset = 0, b"", None, True
        self._ino = st.st_ino
        self.mtime_unix_s = st.st_mtime
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(MAX_READ_BYTES)
        except OSError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self.partial = data
            return []
        self.partial = data[cut + 1:]
        lines = data[:cut].decode(errors="replace").splitlines()
        if self.has_header and self.header is None and lines:
            self.header = lines.pop(0)
        return lines
