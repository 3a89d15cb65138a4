"""The one defense launcher: a moving-target defense (and the scan detector) in a lab.

Experiments and lab mode both start their defense here, so both get the same arguments, the
same log files and the same wait for readiness. Two mechanisms share one schedule (same
seed, interval and flow idle time ⇒ same virtual addresses):

- ``rhm``: random host mutation in the OpenFlow controller (``python -m controllers rhm``),
  optionally with the scan detector in the same app;
- ``nat``: IP hopping with iptables NAT inside each protected host (``defenses.nat_hop``),
  the controller a plain learning switch (or the detector);
- ``none``: the plain learning switch (or the detector).

Files, all in the folder given (an experiment's ``raw/``, lab mode's run folder):
``hops_rhm.jsonl`` (rhm's hop log), ``hops_nat_<host>.jsonl`` (each host's nat hop log),
``nat_hop_<host>.log`` (its output), ``nat_hop_<host>.json`` (its summary at exit) and
``detections.jsonl`` (the detector's log). The hop logs are :mod:`common.hoplog` records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from common import hoplog
from common.cli import wait_until
from common.errors import LabError
from common.hoplog import HopRecord
from lab.lifecycle import Lab

DEFENSES = ("none", "rhm", "nat")
READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DefenseSettings:
    """What to run. hop_interval_s, seed, flow_idle_s, jitter_s (each interval drawn from
    hop_interval_s ± jitter_s): shared by both mechanisms (like for like); detector: the
    controller's scan detector as well. retired_grace_s, hardening: rhm only (``rhm
    --retired-grace-s``; False runs ``--no-hardening``, the defense before issue 15); decoys:
    rhm's decoy responders in the pool (``rhm --decoys``; docs/attacks-defenses.md)."""

    defense: str
    hop_interval_s: float = 2.0
    seed: int = 1
    flow_idle_s: int = 10
    detector: bool = False
    jitter_s: float = 0.0
    retired_grace_s: float | None = None
    hardening: bool = True
    decoys: int = 0


def detect_log(folder: Path) -> Path:
    return folder / "detections.jsonl"


def rhm_hop_log(folder: Path) -> Path:
    return folder / "hops_rhm.jsonl"


def nat_hop_log(folder: Path, host: str) -> Path:
    return folder / f"hops_nat_{host}.jsonl"


def nat_hop_output(host: str) -> str:
    """The nat_hop process's output, a log name in the lab's log folder."""
    return f"nat_hop_{host}.log"


def nat_hop_summary(folder: Path, host: str) -> Path:
    return folder / f"nat_hop_{host}.json"


@dataclass
class RunningDefense:
    """A started defense; hop_logs: every hop log it writes."""

    settings: DefenseSettings
    hop_logs: list[Path] = field(default_factory=list)

    def hops(self) -> list[HopRecord]:
        """Every hop logged so far, sorted by time."""
        return hoplog.read(self.hop_logs)


def _jitter_args(settings: DefenseSettings) -> tuple[str, ...]:
    return ("--jitter-s", f"{settings.jitter_s:g}") if settings.jitter_s else ()


def controller_setup(settings: DefenseSettings, plan_path: Path, folder: Path
                     ) -> tuple[str, tuple[str, ...], list[Path]]:
    """(app, controller args, hop logs) for the lab's controller."""
    detect = ("--detect-log", str(detect_log(folder)))
    if settings.defense == "rhm":
        hop_log = rhm_hop_log(folder)
        args = ("--plan", str(plan_path), "--hop-interval-s", f"{settings.hop_interval_s:g}",
                "--seed", str(settings.seed), "--flow-idle-s", str(settings.flow_idle_s),
                *_jitter_args(settings), "--hop-log", str(hop_log))
        if settings.retired_grace_s is not None:
            args += ("--retired-grace-s", f"{settings.retired_grace_s:g}")
        if not settings.hardening:
            args += ("--no-hardening",)
        if settings.decoys:
            args += ("--decoys", str(settings.decoys))
        if settings.detector:
            args += ("--detector", *detect)
        return "rhm", args, [hop_log]
    if settings.detector:
        return "detector", detect, []
    return "l2", (), []


def nat_hop_args(settings: DefenseSettings, plan_path: Path, folder: Path, host: str,
                 start_epoch_s: float) -> list[str]:
    """Arguments of ``python -m defenses.nat_hop`` in one protected host.

    start_epoch_s: the schedule's time zero (Unix seconds), the same for every host so that
    the hosts follow one schedule and never hold the same address.
    """
    return ["--plan", str(plan_path), "--host", host, "--log", str(nat_hop_log(folder, host)),
            "--hop-interval-s", f"{settings.hop_interval_s:g}", "--seed", str(settings.seed),
            "--flow-idle-s", str(settings.flow_idle_s), *_jitter_args(settings),
            "--start-epoch-s", f"{start_epoch_s:.6f}",
            "--out", str(nat_hop_summary(folder, host))]


def start_defense(lab: Lab, settings: DefenseSettings, plan_path: Path, folder: Path,
                  hop_logs: list[Path], timeout_s: float = READY_TIMEOUT_S) -> RunningDefense:
    """Start the host side (nat) and wait until every protected host has its first virtual
    address (rhm: its first hop-log entry; nat: each ``nat_hop ready``).

    hop_logs: the controller's, from :func:`controller_setup`. LabError when a host gets no
    address in time or the lab fails meanwhile.
    """
    running = RunningDefense(settings, list(hop_logs))
    protected = [h.name for h in lab.plan.protected]
    if settings.defense == "nat":
        epoch = time.time()
        procs = []
        for name in protected:
            running.hop_logs.append(nat_hop_log(folder, name))
            procs.append((name, lab.python(name, "defenses.nat_hop", nat_hop_args(
                settings, plan_path, folder, name, epoch), nat_hop_output(name))))
        for name, proc in procs:
            lab.wait_for_log(nat_hop_output(name), "nat_hop ready", timeout_s, proc)
    elif settings.defense == "rhm":
        def all_addressed() -> bool:
            lab.check_healthy()
            return {r.host for r in running.hops()} >= set(protected)

        if not wait_until(all_addressed, timeout_s):
            raise LabError(f"rhm: protected hosts got no virtual address within {timeout_s:g} s")
    return running
