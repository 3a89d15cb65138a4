"""One trial's lab under a defense, as the attacker experiments run it (``recon`` and its
attacker models, ``mtd-sweep`` through recon, ``mtd-timing``, ``evasion``, ``mtd-longrun``).

What they share between reading their options and scoring: the plan saved in the trial's raw
folder, the defense's settings from the options (hop interval, trial seed, flow idle time,
``--hop-jitter-s``: one Param, one check), the controller set up for it, the network built,
the PLCs and HMI started, the defense started (every protected host has its first virtual
address), optionally the attack's random phase waited; after the attack, the HMI's figures,
under a defense the validity check (the protected hosts' real addresses do not answer the
attacker) and the lab's health.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from experiments import mtd
from experiments.runner import TrialContext
from experiments.spec import Param
from lab.devices import Ics, hmi_results, start_ics, stop_hmi
from lab.lifecycle import Lab

HOP_JITTER = Param("hop_jitter_s", "float", 0.0, "hop interval jitter: each interval drawn "
                   "from hop_interval_s ± this, seeded by the trial (rhm, nat)", 0, 3600)

Watch = Callable[[Lab], AbstractContextManager[Any]]


def check_jitter(cfg: dict[str, Any], intervals_s: Iterable[float],
                 flag: str = "--hop-interval-s") -> None:
    """UserError unless ``--hop-jitter-s`` is below every hop interval the run uses (``flag``:
    the option that sets them)."""
    jitter_s = float(cfg.get("hop_jitter_s", 0.0))
    intervals = sorted(intervals_s)
    if jitter_s and intervals and jitter_s >= intervals[0]:
        below = (f"{flag} {intervals[0]:g}" if len(intervals) == 1
                 else f"every {flag} value (the shortest is {intervals[0]:g})")
        raise UserError(f"--hop-jitter-s {jitter_s:g}: must be below {below}")


def settings(ctx: TrialContext, defense: str, hop_interval_s: float,
             detector: bool = False) -> mtd.DefenseSettings:
    """The defense as the options ask for it: seed from the trial, flow idle time and hop
    jitter from the config (jitter 0 when the experiment has no such option)."""
    cfg = ctx.config
    return mtd.DefenseSettings(defense, hop_interval_s=hop_interval_s, seed=ctx.seed,
                               flow_idle_s=cfg["flow_idle_s"], detector=detector,
                               jitter_s=float(cfg.get("hop_jitter_s", 0.0)),
                               decoys=int(cfg.get("decoys", 0)))


@dataclass
class DefendedLab:
    """A running lab with its ICS and defense; plan_path: the plan the processes read."""

    lab: Lab
    ics: Ics
    defense: mtd.RunningDefense
    plan_path: Path

    def finish(self, ctx: TrialContext, observer: str | None
               ) -> tuple[list[dict[str, Any]], dict[str, float], list[mtd.ReachCheck]]:
        """After the attack: the HMI's rows and metrics, the validity check from
        ``observer`` (under a defense; None: no check) and the lab's health (LabError when
        the controller died or logged an exception)."""
        hmi_rows, hmi_metrics = hmi_results(stop_hmi(self.lab, self.ics))
        checks: list[mtd.ReachCheck] = []
        if observer is not None and self.defense.settings.defense != "none":
            ctx.stage("validity check: real addresses from the attacker")
            checks = mtd.check_real_addresses(self.lab, observer)
        self.lab.check_healthy()
        return hmi_rows, hmi_metrics, checks


@contextlib.contextmanager
def defended_lab(ctx: TrialContext, defense: mtd.DefenseSettings, label: str = "",
                 controller_args: tuple[str, ...] = (), watch: Watch | None = None,
                 phase_s: float | None = None, reusable: bool = False
                 ) -> Iterator[DefendedLab]:
    """Build the lab for ``defense``, start the ICS and the defense, wait ``phase_s`` (the
    attack's random phase, None: none), yield; tear down on the way out.

    label: what the progress line says about the network (default: the defense's name).
    controller_args: more arguments for the controller app (e.g. the detector's thresholds).
    watch: called with the running lab once it is up; the context manager it returns wraps
        the whole body and exits before teardown (e.g. the controller's CPU time).
    reusable: the trial leaves nothing in the hosts that a reset does not undo, so the run's
        kept lab may serve it (:mod:`lab.warm`).
    """
    raw = ctx.raw_dir
    plan_path = raw / "plan.json"
    ctx.plan.save(plan_path)
    app, cargs, hop_logs = mtd.controller_setup(defense, plan_path, raw)
    ctx.stage(f"building the network ({label or defense.defense})")
    cfg = ctx.lab_config(app=app, controller_args=(*cargs, *controller_args))
    with (ctx.open_lab(cfg, reusable) as lab,
          watch(lab) if watch else contextlib.nullcontext()):
        ctx.stage("starting PLCs, HMI and defense")
        ics = start_ics(lab, raw)
        running = mtd.start_defense(lab, defense, plan_path, raw, hop_logs)
        if phase_s:
            ctx.stage(f"random attack phase ({phase_s:.2f} s)")
            time.sleep(phase_s)
        yield DefendedLab(lab, ics, running, plan_path)


def premise_holds(checks: list[mtd.ReachCheck]) -> bool:
    """The moving-target premise: the check ran and no real address answered."""
    return bool(checks) and not any(c.reachable for c in checks)


def reach_rows(checks: list[mtd.ReachCheck]) -> list[dict[str, Any]]:
    """The ``reach_check`` table: one row per protected host's real address."""
    return [{"host": c.host, "address": c.address, "arp_resolved": c.arp_resolved,
             "icmp_answered": c.icmp_answered, "tcp_502_open": c.tcp_502_open}
            for c in checks]
