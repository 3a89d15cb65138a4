"""What the benchmark parts share: the part names, the options and their parsers, small I/O.

Every list option (``--parts``, ``--sizes``, ``--protected``, ``--engines``) has its parser as
its Param's ``parse`` hook, so a bad value is one line and exit 2 before any bundle exists;
the parts parse the same text again with the same parser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.errors import LabError, UserError
from common.plan import MAX_SCALE_HOSTS
from experiments.spec import Param, parse_names
from lab.lifecycle import SWITCH_PREFIX_ENV

PARTS = ("bringup", "trial_stages", "recon_wall", "hopping", "datapath", "scale",
         "memory", "controller")


def parse_parts(text: str) -> list[str]:
    """``bringup,hopping`` → ['bringup', 'hopping']; ``all`` → every part, in order."""
    return parse_names(text, "--parts", "part", PARTS)


def parse_counts(text: str, name: str, lo: int = 2, hi: int = MAX_SCALE_HOSTS) -> list[int]:
    """``10,50`` → [10, 50]; each in [lo, hi]; UserError naming ``name`` otherwise."""
    out: list[int] = []
    for item in (s.strip() for s in text.split(",")):
        try:
            n = int(item)
        except ValueError:
            raise UserError(f"--{name}: {item!r} is not an integer") from None
        if not lo <= n <= hi:
            raise UserError(f"--{name}: {n} is out of range ({lo}-{hi})")
        if n not in out:
            out.append(n)
    return out


def parse_engines(text: str) -> list[str]:
    """``ryu,os-ken`` → ['ryu', 'os-ken']; UserError on an unknown or empty list."""
    engines = [s.strip() for s in text.split(",") if s.strip()]
    for e in engines:
        if e not in ("ryu", "os-ken"):
            raise UserError(f"--engines: unknown engine {e!r} (ryu, os-ken)")
    if not engines:
        raise UserError("--engines: name at least one engine")
    return engines


def parse_sizes(text: str) -> list[int]:
    """``--sizes``: bringup's star host counts, 2-1000 each."""
    return parse_counts(text, "sizes")


def parse_protected(text: str) -> list[int]:
    """``--protected``: hopping's protected-host counts, 1-200 each."""
    return parse_counts(text, "protected", 1, 200)


PARAMS = (
    Param("parts", "str", ",".join(PARTS),
          f"benchmark parts to run, comma-separated from {', '.join(PARTS)}, or all",
          parse=parse_parts),
    Param("sizes", "str", "10,50,100,250", "bringup: star host counts (2-1000 each)",
          quick="10,20", parse=parse_sizes),
    Param("bringup_reps", "int", 1, "bringup: builds per size and kind within one trial",
          1, 20),
    Param("recon_trials", "int", 3, "recon_wall: trials of the default recon", 1, 20,
          quick=1),
    Param("stage_trials", "int", 5, "trial_stages: recon trials (none, gap 0) timed by stage",
          1, 50, quick=1),
    Param("protected", "str", "2,10,50", "hopping: protected-host counts (1-200 each)",
          quick="2", parse=parse_protected),
    Param("hop_interval_s", "float", 1.0, "hopping: rhm hop interval", 0.5, 60),
    Param("hop_window_s", "float", 20.0, "hopping: measurement window per count", 2, 600,
          quick=4.0),
    Param("pings", "int", 50, "datapath: pings per defense", 5, 10000, quick=10),
    Param("iperf_s", "int", 5, "datapath: iperf3 duration per defense", 1, 120, quick=2),
    Param("scale_hosts", "int", 250, "scale: star host count recon runs on", 2,
          MAX_SCALE_HOSTS,
          quick=20),
    Param("linear_hosts", "int", 20, "scale: switches (one host each) of the linear chain",
          2, 250, quick=4),
    Param("mem_sizes", "str", "250,500,1000", "memory: star host counts measured (2-1000 each)",
          quick="10,20", parse=lambda t: parse_counts(t, "mem-sizes")),
    Param("mem_idle_s", "float", 5.0, "memory: idle window per size (CPU shares)", 1, 120,
          quick=1.0),
    Param("burst_hosts", "int", 20, "controller: star hosts sending the burst", 3, 250,
          quick=6),
    Param("engines", "str", "ryu,os-ken", "controller: engines to compare",
          parse=parse_engines),
)


def conditions(cfg: dict[str, Any]) -> list[str]:
    """The runner's conditions: one per part chosen with ``--parts``."""
    return parse_parts(cfg["parts"])


def read_or_empty(path: str | Path) -> str:
    """A file's text, or '' when it cannot be read (a process gone, a log not written yet)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def switch_prefix() -> str:
    """The bridge-name prefix labs of this process use (see ``SWITCH_PREFIX_ENV``)."""
    return os.environ.get(SWITCH_PREFIX_ENV, "")


@contextmanager
def as_lab_error(part: str) -> Iterator[None]:
    """The runner records LabError as a failed run; a UserError would stop the whole run."""
    try:
        yield
    except UserError as exc:
        raise LabError(f"{part}: {exc}") from None
