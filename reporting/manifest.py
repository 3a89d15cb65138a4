"""The schema of a bundle's ``manifest.json``: provenance, per-trial records, validity.

The runner writes it through :class:`Manifest`, the report and the tests read it back with
:meth:`Manifest.from_dict`, so a key is named in one place. The JSON keys and their order are
those of the bundles written before this module existed. Reading is lenient: a bundle from an
older version or edited by hand gives defaults for what is missing or of the wrong type, and
unknown keys are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Every top-level key the runner writes, in the order it writes them.
MANIFEST_KEYS = ("experiment", "command", "git_commit", "started_utc", "ended_utc", "seed",
                 "platform", "controller", "packages", "topology", "trials_requested",
                 "trials", "validity", "interrupted", "complete", "conditions",
                 "condition_order", "plots", "fidelity")


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass
class TrialRecord:
    """One run of one trial (under one condition).

    status: ``ok``, ``invalid`` (a validity check failed: metrics not scored) or ``failed``
        (``error`` says why). timeline: the lab's phase durations (ok/invalid runs only).
    fidelity: the trial's ``FidelitySummary.to_dict()``.
    """

    trial: int
    seed: int
    condition: str = ""
    status: str = ""
    error: str | None = None
    duration_s: float | None = None
    timeline: dict[str, float] | None = None
    fidelity: dict[str, Any] | None = None
    invalid_checks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trial": self.trial, "seed": self.seed}
        if self.condition:
            out["condition"] = self.condition
        if self.status:
            out["status"] = self.status
        if self.error is not None:
            out["error"] = self.error
        if self.duration_s is not None:
            out["duration_s"] = self.duration_s
        if self.timeline is not None:
            out["timeline"] = self.timeline
        if self.fidelity is not None:
            out["fidelity"] = self.fidelity
        if self.invalid_checks:
            out["invalid_checks"] = self.invalid_checks
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(
                value, bool) else None

        trial, seed = data.get("trial"), data.get("seed")
        checks = data.get("invalid_checks")
        return cls(
            trial=trial if isinstance(trial, int) else 0,
            seed=seed if isinstance(seed, int) else 0,
            condition=str(data.get("condition") or ""),
            status=str(data.get("status") or ""),
            error=str(data["error"]) if data.get("error") is not None else None,
            duration_s=number("duration_s"),
            timeline=_dict(data["timeline"]) if isinstance(data.get("timeline"), Mapping)
            else None,
            fidelity=_dict(data["fidelity"]) if isinstance(data.get("fidelity"), Mapping)
            else None,
            invalid_checks=[str(c) for c in checks] if isinstance(checks, list) else [])


@dataclass
class Manifest:
    """A bundle's provenance and run record.

    validity: check name → one bool per trial while the run goes on, one bool for all trials
        once it ended (see :meth:`finish`). conditions, plots, fidelity: None until the runner
        knows them (then written, in that order, after ``complete``). condition_order: the
        order the conditions ran in, one list per trial (shuffled per trial from its seed).
    """

    experiment: str
    command: list[str] = field(default_factory=list)
    git_commit: str | None = None
    started_utc: str | None = None
    ended_utc: str | None = None
    seed: int | None = None
    platform: dict[str, Any] = field(default_factory=dict)
    controller: dict[str, Any] = field(default_factory=dict)
    packages: dict[str, Any] = field(default_factory=dict)
    topology: str | None = None
    trials_requested: int | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    validity: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    complete: bool = False
    conditions: list[str] | None = None
    condition_order: list[list[str]] | None = None
    plots: list[dict[str, str]] | None = None
    fidelity: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record_validity(self, check: str, ok: bool) -> None:
        """One trial's result of one validity check (mid-run form)."""
        self.validity.setdefault(check, []).append(bool(ok))

    def finish(self, ended_utc: str, interrupted: bool, plots: list[tuple[str, str]],
               fidelity: dict[str, Any]) -> None:
        """The end of the run: one bool per check for all trials, plots, run fidelity."""
        self.ended_utc = ended_utc
        self.interrupted = interrupted
        self.complete = not interrupted
        self.plots = [{"stem": p, "caption": c} for p, c in plots]
        self.validity = {k: all(v) if isinstance(v, list) else bool(v)
                         for k, v in self.validity.items()}
        self.fidelity = fidelity

    def validity_counts(self) -> dict[str, tuple[int, int | None]]:
        """check → (trials passed, trials checked).

        Mid-run there is one bool per trial; at the end one bool for all trials, then the
        count is unknown: (1, None) passed in every trial, (0, None) failed in at least one.
        """
        out: dict[str, tuple[int, int | None]] = {}
        for name, value in self.validity.items():
            if isinstance(value, list):
                out[str(name)] = (sum(1 for v in value if v), len(value))
            else:
                out[str(name)] = (1 if value else 0, None)
        return out

    def trial_dicts(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trials]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "experiment": self.experiment, "command": self.command,
            "git_commit": self.git_commit, "started_utc": self.started_utc,
            "ended_utc": self.ended_utc, "seed": self.seed, "platform": self.platform,
            "controller": self.controller, "packages": self.packages,
            "topology": self.topology, "trials_requested": self.trials_requested,
            "trials": self.trial_dicts(), "validity": self.validity,
            "interrupted": self.interrupted, "complete": self.complete,
        }
        for key in ("conditions", "condition_order", "plots", "fidelity"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Lenient read: wrong types become defaults, unknown keys go to ``extra``."""
        def opt(key: str, kind: type | tuple[type, ...]) -> Any:
            value = data.get(key)
            return value if isinstance(value, kind) and not (
                kind is int and isinstance(value, bool)) else None

        trials = data.get("trials")
        command = data.get("command")
        plots = data.get("plots")
        conditions = data.get("conditions")
        order = data.get("condition_order")
        return cls(
            experiment=str(data.get("experiment") or ""),
            command=[str(c) for c in command] if isinstance(command, list) else [],
            git_commit=opt("git_commit", str), started_utc=opt("started_utc", str),
            ended_utc=opt("ended_utc", str), seed=opt("seed", int),
            platform=_dict(data.get("platform")), controller=_dict(data.get("controller")),
            packages=_dict(data.get("packages")), topology=opt("topology", str),
            trials_requested=opt("trials_requested", int),
            trials=[TrialRecord.from_dict(t) for t in trials if isinstance(t, Mapping)]
            if isinstance(trials, list) else [],
            validity=_dict(data.get("validity")),
            interrupted=bool(data.get("interrupted")), complete=bool(data.get("complete")),
            conditions=[str(c) for c in conditions] if isinstance(conditions, list) else None,
            condition_order=[[str(c) for c in o] for o in order if isinstance(o, list)]
            if isinstance(order, list) else None,
            plots=[_dict(p) for p in plots if isinstance(p, Mapping)]
            if isinstance(plots, list) else None,
            fidelity=_dict(data["fidelity"]) if isinstance(data.get("fidelity"), Mapping)
            else None,
            extra={k: v for k, v in data.items() if k not in MANIFEST_KEYS})
