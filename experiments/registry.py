"""Every experiment by name (the order of ``experiments.run list`` and ``all``)."""

from __future__ import annotations

from experiments import ics, recon, rtt
from experiments.errors import UserError
from experiments.spec import Experiment

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in (recon.EXPERIMENT, rtt.EXPERIMENT, ics.EXPERIMENT)}
EXPERIMENTS["bench"] = __import__("experiments.bench").bench.EXPERIMENT  # benchmarks
EXPERIMENTS["attacks"] = __import__("experiments.attacks_exp").attacks_exp.EXPERIMENT
EXPERIMENTS["mtd-sweep"] = __import__("experiments.mtd_sweep").mtd_sweep.EXPERIMENT
EXPERIMENTS["evasion"] = __import__("experiments.evasion").evasion.EXPERIMENT


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise UserError(f"unknown experiment {name!r} (choose from "
                        f"{', '.join(EXPERIMENTS)}, or 'list', 'all')") from None
