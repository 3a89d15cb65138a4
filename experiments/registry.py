"""Every experiment by name (the order of ``experiments.run list`` and ``all``)."""

from __future__ import annotations

from common.errors import UserError
from experiments import (
    attacks_exp,
    bench,
    evasion,
    ics,
    mtd_longrun,
    mtd_sweep,
    mtd_timing,
    nameservice,
    recon,
    rtt,
)
from experiments.spec import Experiment

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in (recon.EXPERIMENT, rtt.EXPERIMENT, ics.EXPERIMENT,
                        attacks_exp.EXPERIMENT, mtd_sweep.EXPERIMENT, mtd_timing.EXPERIMENT,
                        evasion.EXPERIMENT, bench.EXPERIMENT, mtd_longrun.EXPERIMENT,
                        nameservice.EXPERIMENT)}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise UserError(f"unknown experiment {name!r} (choose from "
                        f"{', '.join(EXPERIMENTS)}, or 'list', 'all')") from None
