"""``python -m experiments.mtd_longrun_stats BUNDLE``: an ``mtd-longrun`` bundle over its trials.

Per condition (every run counted, premise-failed and failed runs shown, not dropped; the
estimates are over the runs that passed the premise check): the time to the first and to the
second PLC reached (mean, Student t 95 % interval over the trials), PLCs reached by the window's
end and the HMI's availability as pooled k/n with a Wilson interval, the controller's CPU,
flows, packet-ins, decoys met, the sweep rounds and their length, and the fidelity monitor's
flags. Between conditions: paired t tests on the trials' shared seeds (decoys 8 against 0 at
the same pool and interval; one hop interval against another at one pool). Against the simple
sampling model (each round sweeps a fresh random sample, so a PLC is in it with probability
p = sample / addresses in scope): the expected rounds to the first and to the second of the
PLCs, and the central 95 % range of the mean of n trials under the model.

The statistics are :mod:`reporting.stats`'s (``summarize_metric``, ``paired_test``,
``Proportion``); this module only gathers each run's values from the bundle (its CSVs, the
manifest and the attacker's outcome in ``raw/``) and formats them as markdown tables.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, run_main
from common.errors import UserError
from experiments.mtd_longrun import Condition, parse_condition
from experiments.recon_attackers import outcome_path
from reporting.bundle import read_csv
from reporting.manifest import Manifest
from reporting.stats import MetricSummary, PairedTest, Proportion, paired_test, summarize_metric

# The per-run values summarized per condition, in table order: (key, column heading).
CONTINUOUS = (("first_reach_s", "1st PLC reached (s)"), ("second_reach_s", "2nd PLC reached (s)"),
              ("controller_cpu_pct", "controller CPU (%)"), ("flow_table_flows", "flows"),
              ("controller_packet_ins", "packet-ins"), ("attack_decoys_met", "decoys met"),
              ("rounds", "rounds"), ("round_s", "round length (s)"))
PROPORTIONS = (("plcs_reached", "PLCs reached by the window's end"),
               ("hmi_availability", "HMI availability"))
_FROM_METRICS = ("controller_cpu_pct", "flow_table_flows", "controller_packet_ins",
                 "attack_decoys_met", "window_end_s")


# --- one run of one condition -----------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One trial of one condition. status: the manifest's ``ok``, ``invalid`` (premise failed:
    ``invalid_checks`` says which) or ``failed``. reach_s: the first time (s from the attack's
    start) each distinct PLC was reached, sorted. round_starts_s: when each sweep round began.
    """

    trial: int
    condition: str
    status: str
    invalid_checks: tuple[str, ...] = ()
    reach_s: tuple[float, ...] = ()
    plcs_total: int = 0
    hmi_polls: int = 0
    hmi_ok: int = 0
    round_starts_s: tuple[float, ...] = ()
    swept: int = 0
    in_scope: int = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    saturated: bool | None = None
    idle_share: float | None = None

    def reach_time_s(self, nth: int) -> float:
        """When the ``nth`` distinct PLC (1-based) was first reached; NaN: it was not."""
        return self.reach_s[nth - 1] if len(self.reach_s) >= nth else math.nan

    def reach_round(self, nth: int) -> int | None:
        """The sweep round (1-based) under way when the ``nth`` PLC was first reached."""
        t = self.reach_time_s(nth)
        if math.isnan(t) or not self.round_starts_s:
            return None
        return max(1, sum(1 for s in self.round_starts_s if s <= t))

    def values(self) -> dict[str, float]:
        """The run's values by :data:`CONTINUOUS` and :data:`PROPORTIONS` key."""
        gaps = [b - a for a, b in zip(self.round_starts_s, self.round_starts_s[1:], strict=False)]
        out = {"first_reach_s": self.reach_time_s(1), "second_reach_s": self.reach_time_s(2),
               "rounds": float(len(self.round_starts_s)) if self.round_starts_s else math.nan,
               "round_s": sum(gaps) / len(gaps) if gaps else math.nan}
        out.update({k: float(self.metrics.get(k, math.nan)) for k in _FROM_METRICS})
        if self.plcs_total:
            out["plcs_reached"] = Proportion(len(self.reach_s), self.plcs_total)
        if self.hmi_polls:
            out["hmi_availability"] = Proportion(self.hmi_ok, self.hmi_polls)
        return out


# --- pure: from the bundle's rows -------------------------------------------------------------
Key = tuple[int, str]  # (trial, condition)


def _key(row: Mapping[str, str]) -> Key:
    return int(row["trial"]), row["condition"]


def first_reaches(attempt_rows: Iterable[Mapping[str, str]],
                  window_s: float = math.inf) -> dict[Key, tuple[float, ...]]:
    """``attack_attempts.csv`` → (trial, condition) → the first time each distinct PLC was
    reached (``reached_plc``: the PLC's own log shows the request answered) within
    ``window_s``, sorted."""
    first: dict[Key, dict[str, float]] = defaultdict(dict)
    for r in attempt_rows:
        plc = r.get("reached_plc", "")
        if not plc:
            continue
        t = float(r["t_s"])
        if t <= window_s and t < first[_key(r)].get(plc, math.inf):
            first[_key(r)][plc] = t
    return {k: tuple(sorted(v.values())) for k, v in first.items()}


def plc_totals(outcome_rows: Iterable[Mapping[str, str]]) -> dict[Key, int]:
    """``attack_outcomes.csv`` (the ``all`` tactic) → (trial, condition) → PLCs in the plan."""
    return {_key(r): int(r["plcs_total"]) for r in outcome_rows
            if r.get("tactic") == "all" and r.get("plcs_total")}


def hmi_counts(hmi_rows: Iterable[Mapping[str, str]]) -> dict[Key, tuple[int, int]]:
    """``hmi.csv`` → (trial, condition) → (polls answered, polls) over every PLC."""
    out: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for r in hmi_rows:
        counts = out[_key(r)]
        counts[0] += int(r["polls_ok"])
        counts[1] += int(r["polls"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def run_metrics(metric_rows: Iterable[Mapping[str, str]]) -> dict[Key, dict[str, float]]:
    """``metrics.csv`` → (trial, condition) → metric → value."""
    out: dict[Key, dict[str, float]] = defaultdict(dict)
    for r in metric_rows:
        try:
            out[_key(r)][r["metric"]] = float(r["value"])
        except ValueError:
            continue
    return dict(out)


def round_starts(outcome: Mapping[str, Any]) -> tuple[float, ...]:
    """The attacker's outcome → when each sweep round began, s from the attack's start."""
    t0 = float(outcome.get("attack_start_unix_s") or 0.0)
    return tuple(float(r["started_unix_s"]) - t0 for r in outcome.get("rounds", [])
                 if t0 and r.get("started_unix_s") is not None)


# --- statistics over the trials -----------------------------------------------------------------
def by_condition(runs: Iterable[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        out[run.condition].append(run)
    return {c: sorted(rs, key=lambda r: r.trial) for c, rs in out.items()}


def condition_summary(runs: Sequence[Run]) -> dict[str, MetricSummary]:
    """Each value over the condition's runs that passed the premise check (``ok``)."""
    scored = [r.values() for r in runs if r.status == "ok"]
    keys = [k for k, _ in CONTINUOUS] + [k for k, _ in PROPORTIONS]
    return {k: summarize_metric([v[k] for v in scored if k in v]) for k in keys}


def compare(runs: Sequence[Run], a: str, b: str, value: str) -> PairedTest:
    """Condition ``b`` against ``a`` on ``value``, paired by trial (the trials' shared seeds),
    over the trials where both runs passed the premise check and both have the value (a PLC
    not reached in the window has no time: that pair is left out, ``n_pairs`` says how many
    remain)."""
    ok = {(r.condition, r.trial): r.values()[value] for r in runs if r.status == "ok"}
    trials = sorted({r.trial for r in runs})
    pairs = [(ok[(a, t)], ok[(b, t)]) for t in trials if (a, t) in ok and (b, t) in ok]
    return paired_test(value, a, b, pairs)


# --- the sampling model -------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplingModel:
    """Each round sweeps a fresh uniform sample of ``swept`` of the ``in_scope`` addresses, so
    each of ``plcs`` PLCs is in a round's sample with probability p = swept / in_scope,
    independently of where it hopped and of the other rounds: the rounds to find a given PLC
    are geometric in p, the first of the PLCs is their minimum, the last their maximum."""

    swept: int
    in_scope: int
    plcs: int = 2

    @property
    def p(self) -> float:
        return min(1.0, self.swept / self.in_scope)

    def cdf(self, nth: int, rounds: int) -> float:
        """P(at least ``nth`` of the PLCs found within ``rounds`` rounds)."""
        f = 1.0 - (1.0 - self.p) ** max(rounds, 0)
        return sum(math.comb(self.plcs, j) * f**j * (1 - f) ** (self.plcs - j)
                   for j in range(nth, self.plcs + 1))

    def pmf(self, nth: int, tail: float = 1e-12) -> list[float]:
        """P(the ``nth`` PLC is found in round r) for r = 1, 2, ... until the tail is below
        ``tail`` (index 0 is round 1)."""
        out: list[float] = []
        prev, r = 0.0, 0
        while prev < 1.0 - tail:
            r += 1
            now = self.cdf(nth, r)
            out.append(now - prev)
            prev = now
        return out

    def mean_rounds(self, nth: int) -> float:
        return sum((i + 1) * q for i, q in enumerate(self.pmf(nth)))

    def mean_range(self, nth: int, n: int, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` range of the mean of ``n`` independent draws of the rounds
        to the ``nth`` PLC (the n-fold convolution of :meth:`pmf`)."""
        one = self.pmf(nth)
        total = [1.0]  # pmf of the sum, index = sum of rounds
        for _ in range(n):
            nxt = [0.0] * (len(total) + len(one))
            for i, a in enumerate(total):
                if a < 1e-300:
                    continue
                for j, q in enumerate(one):
                    nxt[i + j + 1] += a * q
            total = nxt
        lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
        acc, lo, hi = 0.0, None, None
        for s, q in enumerate(total):
            acc += q
            if lo is None and acc >= lo_q:
                lo = s
            if acc >= hi_q:
                hi = s
                break
        assert lo is not None and hi is not None
        return lo / n, hi / n


# --- I/O: the bundle ----------------------------------------------------------------------------
def _read(bundle: Path, name: str) -> list[dict[str, str]]:
    path = bundle / name
    return read_csv(path) if path.exists() else []


def load_manifest(bundle: Path) -> Manifest:
    try:
        return Manifest.from_dict(json.loads((bundle / "manifest.json").read_text()))
    except (OSError, ValueError):
        raise UserError(f"{bundle} is not a results bundle (no readable manifest.json)"
                        ) from None


def load_runs(bundle: Path) -> list[Run]:
    """Every run the manifest records, with its values from the bundle's CSVs and its rounds
    from the attacker's outcome in ``raw/``."""
    manifest = load_manifest(bundle)
    if manifest.experiment != "mtd-longrun":
        raise UserError(f"{bundle}: a {manifest.experiment or 'unknown'} bundle, not mtd-longrun")
    metrics = run_metrics(_read(bundle, "metrics.csv"))
    reaches = first_reaches(_read(bundle, "attack_attempts.csv"))
    totals = plc_totals(_read(bundle, "attack_outcomes.csv"))
    hmi = hmi_counts(_read(bundle, "hmi.csv"))
    runs = []
    for rec in manifest.trials:
        key = (rec.trial, rec.condition)
        m = metrics.get(key, {})
        window_s = m.get("window_end_s", math.inf)
        starts: tuple[float, ...] = ()
        swept = in_scope = 0
        out = outcome_path(bundle / "raw" / f"trial-{rec.trial:03d}" / rec.condition,
                           "persistent")
        if out.exists():
            outcome = json.loads(out.read_text())
            starts = round_starts(outcome)
            swept = max((int(r.get("swept", 0)) for r in outcome.get("rounds", [])),
                        default=0)
            in_scope = len(outcome.get("targets", []))
        fid = rec.fidelity or {}
        runs.append(Run(
            trial=rec.trial, condition=rec.condition, status=rec.status,
            invalid_checks=tuple(rec.invalid_checks),
            reach_s=tuple(t for t in reaches.get(key, ()) if t <= window_s),
            plcs_total=totals.get(key, 0), hmi_ok=hmi.get(key, (0, 0))[0],
            hmi_polls=hmi.get(key, (0, 0))[1], round_starts_s=starts, swept=swept,
            in_scope=in_scope, metrics=m,
            saturated=fid.get("saturated") if isinstance(fid.get("saturated"), bool) else None,
            idle_share=fid.get("mean_idle_share")))
    return runs


# --- markdown -----------------------------------------------------------------------------------
def _decimals(mean: float, lo: float, hi: float, start: int, most: int = 3) -> int:
    """Decimals (``start`` to ``most``) at which an estimate and its interval's bounds all
    print differently: ``0.021 [0.012, 0.031]``, not ``0.0 [0.0, 0.0]``."""
    d = start
    while d < most and len({float(f"{x:.{d}f}") for x in (mean, lo, hi)}) < 3:
        d += 1
    return d


def fmt(entry: MetricSummary, decimals: int = 1, spread: bool = False) -> str:
    """``12.3 [10.1, 14.5]`` (Student t), ``3/10 [0.11, 0.60]`` (Wilson; k/n first), the
    value and why there is no interval (``4.0 (all 5 values equal: no interval)``), or ``—``;
    never ``± 0``. ``spread``: the trials' range too (``... range 3.1 to 20.4``)."""
    if entry.mean is None or math.isnan(entry.mean):
        return "—"
    if entry.kind == "proportion":
        d = 4 if entry.n > 200 else 2
        return f"{entry.k}/{entry.n} [{entry.ci_low:.{d}f}, {entry.ci_high:.{d}f}]"
    lo, hi = entry.ci_low, entry.ci_high
    if lo is None or hi is None:
        text = f"{entry.mean:.{decimals}f}"
        return f"{text} ({entry.note})" if entry.note else text
    d = _decimals(entry.mean, lo, hi, decimals)
    text = f"{entry.mean:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"
    if spread and entry.min is not None and entry.max is not None:
        text += f" range {entry.min:.{d}f} to {entry.max:.{d}f}"
    return text


def _label(name: str) -> str:
    c = parse_condition(name)
    return f"2^{c.pool_bits}, {c.hop_interval_s:g} s, {c.decoys or 'no'} decoys"


def _runs_cell(runs: Sequence[Run]) -> str:
    ok = sum(1 for r in runs if r.status == "ok")
    bad = [r for r in runs if r.status != "ok"]
    text = f"{ok}/{len(runs)}"
    if bad:
        text += " (" + "; ".join(f"trial {r.trial}: {r.status} "
                                 f"{','.join(r.invalid_checks)}".strip() for r in bad) + ")"
    return text


def _load_cell(runs: Sequence[Run]) -> str:
    flagged = sum(1 for r in runs if r.saturated)
    idle = [r.idle_share for r in runs if isinstance(r.idle_share, int | float)]
    span = f"{min(idle):.2f}-{max(idle):.2f}" if idle else "—"
    return f"{flagged}/{len(runs)}, {span}"


def _order(names: Iterable[str]) -> list[str]:
    return [c.name for c in sorted(parse_condition(n) for n in names)]


def condition_table(runs: Sequence[Run]) -> str:
    """One row per condition: runs scored, every :data:`CONTINUOUS` and :data:`PROPORTIONS`
    value, the fidelity monitor's flags."""
    groups = by_condition(runs)
    heads = ["condition", "runs scored"] + [h for _, h in CONTINUOUS[:2]] + \
        [PROPORTIONS[0][1]] + [h for _, h in CONTINUOUS[2:]] + [PROPORTIONS[1][1]] + \
        ["saturated (fidelity) / mean idle share"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for name in _order(groups):
        s = condition_summary(groups[name])
        cells = [_label(name), _runs_cell(groups[name])]
        scored = sum(1 for r in groups[name] if r.status == "ok")
        # A PLC not reached in the window has no time: n below the runs scored says so.
        cells += [fmt(s[k], spread=True) + (f", n={s[k].n}" if s[k].n < scored else "")
                  for k, _ in CONTINUOUS[:2]] + [fmt(s[PROPORTIONS[0][0]])]
        cells += [fmt(s[k], 2 if k == "round_s" else (1 if k == "controller_cpu_pct" else 0))
                  for k, _ in CONTINUOUS[2:]]
        cells += [fmt(s[PROPORTIONS[1][0]]), _load_cell(groups[name])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_trial_table(runs: Sequence[Run], value: str = "second_reach_s") -> str:
    """One row per condition, one column per trial: ``value`` (rounds in brackets), so the
    pairing is visible; a run that did not pass the premise check is marked."""
    groups = by_condition(runs)
    trials = sorted({r.trial for r in runs})
    nth = 2 if value == "second_reach_s" else 1
    lines = ["| condition | " + " | ".join(f"trial {t}" for t in trials) + " |",
             "|---|" + "---|" * len(trials)]
    for name in _order(groups):
        row = {r.trial: r for r in groups[name]}
        cells = []
        for t in trials:
            r = row.get(t)
            if r is None:
                cells.append("—")
                continue
            v = r.values()[value]
            text = "not reached" if math.isnan(v) else f"{v:.1f}"
            rnd = r.reach_round(nth)
            text += f" ({rnd})" if rnd is not None else ""
            cells.append(text if r.status == "ok" else f"{text} [{r.status}]")
        lines.append(f"| {_label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _signed(x: float, d: int = 1) -> str:
    """``+1.2``, ``-0.3``, and ``0.0`` rather than ``-0.0``."""
    text = f"{x:+.{d}f}"
    return text[1:] if float(text) == 0 else text


def _paired_cell(test: PairedTest) -> str:
    if test.mean_diff is None:
        return f"n = {test.n_pairs}: {test.note}"
    lo, hi = test.ci_low, test.ci_high
    d = _decimals(test.mean_diff, lo, hi, 1) if lo is not None and hi is not None else 1
    text = _signed(test.mean_diff, d)
    if lo is not None and hi is not None:
        text += f" [{_signed(lo, d)}, {_signed(hi, d)}]"
    if test.p_value is not None:
        text += f", p = {test.p_value:.2f}"
    elif test.note:
        text += f" ({test.note})"
    return text + f", n = {test.n_pairs}"


def paired_table(runs: Sequence[Run], comparisons: Sequence[tuple[str, str]],
                 values: Sequence[str] = ("first_reach_s", "second_reach_s")) -> str:
    """One row per (a, b): b - a paired by trial, mean difference [95 % t interval], p."""
    heads = ["b - a"] + [f"{dict(CONTINUOUS)[v]}: mean difference [95 % t], p, pairs"
                         for v in values]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for a, b in comparisons:
        cells = [f"{_label(b)} - {_label(a)}"]
        cells += [_paired_cell(compare(runs, a, b, v)) for v in values]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def decoy_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """(without decoys, with decoys) at each pool size and hop interval both ran."""
    conds = {parse_condition(n) for n in names}
    return [(Condition(c.pool_bits, c.hop_interval_s).name, c.name) for c in sorted(conds)
            if c.decoys and Condition(c.pool_bits, c.hop_interval_s) in conds]


def interval_pairs(names: Iterable[str], pool_bits: int) -> list[tuple[str, str]]:
    """(shortest interval, each longer one) at ``pool_bits``, per decoy count."""
    conds = sorted(c for c in (parse_condition(n) for n in names) if c.pool_bits == pool_bits)
    out = []
    for decoys in sorted({c.decoys for c in conds}):
        same = [c for c in conds if c.decoys == decoys]
        out += [(same[0].name, c.name) for c in same[1:]]
    return out


def model_table(runs: Sequence[Run], pool_bits: int) -> str:
    """At ``pool_bits``: measured rounds (and seconds) to the first and the second PLC against
    the sampling model's expectation and its 95 % range for the mean of the trials."""
    groups = {n: rs for n, rs in by_condition(runs).items()
              if parse_condition(n).pool_bits == pool_bits}
    lines = ["| condition | p per round | round length (s) | rounds to 1st PLC: measured "
             "[95 % t] / model mean [95 % range of the mean of n] | rounds to 2nd PLC: measured "
             "/ model | 2nd PLC (s): measured / model (mean rounds - 1/2) x round length | n |",
             "|---|---|---|---|---|---|---|"]
    for name in _order(groups):
        ok = [r for r in groups[name] if r.status == "ok" and r.in_scope]
        if not ok:
            continue
        model = SamplingModel(ok[0].swept, ok[0].in_scope, ok[0].plcs_total or 2)
        cells = [_label(name), f"{model.swept}/{model.in_scope} = {model.p:.4f}"]
        length = summarize_metric([r.values()["round_s"] for r in ok])
        cells.append(fmt(length, 2))
        for nth in (1, 2):
            got = [r.reach_round(nth) for r in ok]
            measured = summarize_metric([float(g) if g is not None else math.nan
                                         for g in got])
            lo, hi = model.mean_range(nth, max(measured.n, 1))
            missing = sum(1 for g in got if g is None)
            note = f", {missing} not reached" if missing else ""
            cells.append(f"{fmt(measured)}{note} / {model.mean_rounds(nth):.1f}"
                         f" [{lo:.1f}, {hi:.1f}]")
        t2 = summarize_metric([r.values()["second_reach_s"] for r in ok])
        # A reach comes during its round, on average half-way: (E[rounds] - 1/2) rounds.
        expect = (model.mean_rounds(2) - 0.5) * (length.mean or math.nan)
        cells.append(f"{fmt(t2)} / {expect:.0f}")
        cells.append(str(len(ok)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(bundle: Path) -> str:
    """Every table of this module for one bundle, as markdown."""
    runs = load_runs(bundle)
    if not runs:
        raise UserError(f"{bundle}: the manifest records no run")
    names = {r.condition for r in runs}
    widest = max(parse_condition(n).pool_bits for n in names)
    parts = ["## Per condition", condition_table(runs),
             "## Time to the second PLC per trial (s; round in brackets)",
             per_trial_table(runs),
             "## Time to the first PLC per trial (s; round in brackets)",
             per_trial_table(runs, "first_reach_s"),
             "## Decoys: 8 against 0, paired by trial", paired_table(runs, decoy_pairs(names)),
             f"## Hop interval at 2^{widest}, paired by trial",
             paired_table(runs, interval_pairs(names, widest)),
             f"## The sampling model at 2^{widest}", model_table(runs, widest)]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m experiments.mtd_longrun_stats",
                      description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="an mtd-longrun results bundle folder")

    def body() -> int:
        bundle = p.parse_args(argv).bundle
        if not bundle.is_dir():
            raise UserError(f"{bundle} is not a directory")
        print(report(bundle), end="")
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
