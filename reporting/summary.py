"""The schema of a bundle's ``summary.json``: statistics nested by condition and metric.

::

    {"experiment": "recon", "trials_completed": 4, "trials_failed": 0,
     "trials_premise_failed": 1, "failures": [],
     "intervals": {"confidence": 0.95, "proportion": "wilson", "continuous": "t"},
     "trials": {"none": {"scored": 2, "premise_failed": 0, "failed": 0, "failed_checks": {}},
                "rhm": {...}},
     "conditions": {"none": {"host_precision": {"kind": "proportion", "n": 10, "k": 9,
                                                 "mean": 0.9, "ci_low": .., "ci_high": ..,
                                                 "method": "wilson", "trials": 2, ...}}},
     "paired": [{"metric": "attacker_modbus_success", "a": "none", "b": "rhm",
                 "method": "mcnemar-exact", "n_pairs": 2, "mean_diff": -1.0, "p_value": 0.5}]}

An experiment without conditions has the one condition ``all``. The runner builds it with
:func:`build_summary`; the report, compare and the tests read it with :func:`metric_entries`,
which also reads the flat ``"metrics": {"cond:metric": ...}`` of bundles written before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from reporting.stats import CONFIDENCE, paired_test, summarize_metric

NO_CONDITION = "all"


@dataclass
class ConditionTrials:
    """One condition's trials: values of the scored ones, and why the others were not.

    values: metric → trial → value (scored trials only). premise_failed: trials whose validity
    check failed (their metrics are not scored, but they are counted). failed_checks: check →
    how many trials failed it. failed: trials that ended in an error.
    """

    values: dict[str, dict[int, float]]
    scored: int = 0
    premise_failed: int = 0
    failed: int = 0
    failed_checks: dict[str, int] | None = None

    @classmethod
    def empty(cls) -> ConditionTrials:
        return cls(values={}, failed_checks={})

    def add_scored(self, trial: int, metrics: Mapping[str, float]) -> None:
        self.scored += 1
        for name, value in metrics.items():
            self.values.setdefault(name, {})[trial] = value

    def add_premise_failed(self, checks: Sequence[str]) -> None:
        self.premise_failed += 1
        for c in checks:
            self.failed_checks = self.failed_checks or {}
            self.failed_checks[c] = self.failed_checks.get(c, 0) + 1


def build_summary(experiment: str, trials: Mapping[str, ConditionTrials],
                  failures: Sequence[str], proportion_method: str = "wilson"
                  ) -> dict[str, Any]:
    """The whole ``summary.json`` object; ``trials`` in the experiment's condition order."""
    conditions = {cond: {metric: summarize_metric(list(per.values()), proportion_method
                                                  ).to_dict()
                         for metric, per in ct.values.items()}
                  for cond, ct in trials.items()}
    paired = []
    for a, b in combinations(list(trials), 2):
        va, vb = trials[a].values, trials[b].values
        for metric in va:
            if metric not in vb:
                continue
            common = sorted(set(va[metric]) & set(vb[metric]))
            pairs = [(va[metric][t], vb[metric][t]) for t in common]
            paired.append(paired_test(metric, a, b, pairs).to_dict())
    return {
        "experiment": experiment,
        "trials_completed": sum(t.scored + t.premise_failed for t in trials.values()),
        "trials_failed": sum(t.failed for t in trials.values()),
        "trials_premise_failed": sum(t.premise_failed for t in trials.values()),
        "failures": list(failures),
        "intervals": {"confidence": CONFIDENCE, "proportion": proportion_method,
                      "continuous": "t"},
        "trials": {cond: {"scored": t.scored, "premise_failed": t.premise_failed,
                          "failed": t.failed, "failed_checks": dict(t.failed_checks or {})}
                   for cond, t in trials.items()},
        "conditions": conditions,
        "paired": paired,
    }


@dataclass(frozen=True)
class MetricEntry:
    """One metric of one condition as ``summary.json`` has it (``stats``: the JSON object)."""

    condition: str
    metric: str
    stats: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``metric`` alone for the one-condition case, else ``condition:metric``."""
        return self.metric if self.condition == NO_CONDITION else f"{self.condition}:{self.metric}"


def metric_entries(summary: Mapping[str, Any]) -> list[MetricEntry]:
    """Every (condition, metric) of a summary, in its order; old flat summaries too."""
    out: list[MetricEntry] = []
    conditions = summary.get("conditions")
    if isinstance(conditions, Mapping):
        for cond, metrics in conditions.items():
            if not isinstance(metrics, Mapping):
                continue
            for name, st in metrics.items():
                out.append(MetricEntry(str(cond), str(name),
                                       st if isinstance(st, Mapping) else {}))
        return out
    legacy = summary.get("metrics")
    if isinstance(legacy, Mapping):
        for key, st in legacy.items():
            cond, sep, name = str(key).partition(":")
            out.append(MetricEntry(cond if sep else NO_CONDITION, name if sep else cond,
                                   _legacy_stats(st if isinstance(st, Mapping) else {})))
    return out


def _legacy_stats(st: Mapping[str, Any]) -> dict[str, Any]:
    """A pre-nesting entry (mean, ci95 half-width) in today's shape (ci_low, ci_high)."""
    out = dict(st)
    mean, ci = st.get("mean"), st.get("ci95")
    out.setdefault("kind", "continuous")
    out.setdefault("method", "t")
    if isinstance(mean, int | float) and isinstance(ci, int | float) and ci == ci and ci > 0:
        out.setdefault("ci_low", mean - ci)
        out.setdefault("ci_high", mean + ci)
    elif st.get("n") == 1:
        out.setdefault("note", "n=1: no interval")
    return out


def metric(summary: Mapping[str, Any], name: str, condition: str = NO_CONDITION
           ) -> Mapping[str, Any]:
    """The stats of one metric of one condition; KeyError naming both when absent."""
    for e in metric_entries(summary):
        if e.condition == condition and e.metric == name:
            return e.stats
    raise KeyError(f"{condition}:{name}")


def condition_trials(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """condition → {scored, premise_failed, failed, failed_checks} (empty for old bundles)."""
    trials = summary.get("trials")
    if not isinstance(trials, Mapping):
        return {}
    return {str(c): t for c, t in trials.items() if isinstance(t, Mapping)}


def paired_entries(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    paired = summary.get("paired")
    return [p for p in paired if isinstance(p, Mapping)] if isinstance(paired, list) else []


def flat_metrics(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{"condition:metric" (or "metric"): stats}``: the nested summary under the flat names
    of the per-trial labels, for code that looks one metric up by name."""
    return {e.label: e.stats for e in metric_entries(summary)}
