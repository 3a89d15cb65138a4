"""``python -m experiments.compare DIR DIR... [--out DIR]``: the same metrics of several bundles
side by side.

Reads each bundle's ``summary.json`` (and ``manifest.json``/``config.json`` for the experiment
name) and compares the metrics every bundle has. Bundles of different experiments are allowed;
with no metric shared by all of them there is nothing to compare (one-line error, exit 2).
A metric is named ``condition:metric`` (just ``metric`` for an experiment without conditions).
Writes into ``--out`` (default ``results/compare/<UTC timestamp>``): ``comparison.csv`` (long
format: bundle, experiment, metric, mean, ci_low, ci_high, n, k, method) and
``comparison.png``/``.svg`` (per shared metric, one bar per bundle with its 95% interval), and
prints the table. Intervals are each bundle's own (Wilson or Clopper-Pearson for proportions,
Student t for continuous metrics; ``docs/statistics.md``).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, run_main
from common.errors import UserError
from common.files import atomic_write_text
from reporting.bundle import cell_value, read_bundle_json, read_json_object, utc_stamp
from reporting.stats import format_estimate
from reporting.summary import metric_entries

log = logging.getLogger(__name__)

CSV_NAME = "comparison.csv"
PLOT_STEM = "comparison"
CSV_COLUMNS = ("bundle", "experiment", "metric", "mean", "ci_low", "ci_high", "n", "k",
               "method")
PLOT_COLUMNS = 3


@dataclass(frozen=True)
class MetricStats:
    """One metric of one bundle: estimate, 95% interval (NaN when there is none), n, k (None
    for a continuous metric), the interval's method, and the entry as summary.json has it."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    k: int | None
    method: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class BundleSummary:
    """What a comparison needs of a bundle.

    label: short unique name (``<experiment>/<timestamp>`` unless that is ambiguous).
    metrics: metric → stats, in the bundle's own order.
    """

    path: Path
    label: str
    experiment: str
    metrics: dict[str, MetricStats]


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def load_summary(bundle: Path) -> BundleSummary:
    """Read one bundle; UserError when it is not a results bundle with a summary."""
    bundle = Path(bundle)
    summary = read_bundle_json(bundle, "summary.json", "with a summary")
    if not isinstance(summary.get("conditions"), dict) and not isinstance(
            summary.get("metrics"), dict):
        raise UserError(f"{bundle / 'summary.json'}: no 'conditions' (or old 'metrics') object")
    experiment = summary.get("experiment")
    for name in ("manifest.json", "config.json"):
        if isinstance(experiment, str) and experiment:
            break
        experiment = (read_json_object(bundle / name) or {}).get("experiment")
    metrics = {}
    for e in metric_entries(summary):
        st = e.stats
        n, k = st.get("n"), st.get("k")
        metrics[e.label] = MetricStats(
            mean=_float(st.get("mean")), ci_low=_float(st.get("ci_low")),
            ci_high=_float(st.get("ci_high")),
            n=n if isinstance(n, int) and not isinstance(n, bool) else 0,
            k=k if isinstance(k, int) and not isinstance(k, bool) else None,
            method=str(st.get("method") or ""), raw=dict(st))
    resolved = bundle.resolve()
    return BundleSummary(path=bundle, label=f"{resolved.parent.name}/{resolved.name}",
                         experiment=str(experiment or "unknown"), metrics=metrics)


def load_bundles(paths: list[Path]) -> list[BundleSummary]:
    """Load every bundle; labels made unique (the full path where the short one repeats)."""
    bundles = [load_summary(p) for p in paths]
    seen: dict[str, int] = {}
    for b in bundles:
        seen[b.label] = seen.get(b.label, 0) + 1
    out = []
    for i, b in enumerate(bundles, start=1):
        label = b.label if seen[b.label] == 1 else f"{b.path} (#{i})"
        out.append(BundleSummary(b.path, label, b.experiment, b.metrics))
    return out


def shared_metrics(bundles: list[BundleSummary]) -> list[str]:
    """Metrics every bundle has, in the first bundle's order; UserError when there is none."""
    if not bundles:
        return []
    common = set(bundles[0].metrics)
    for b in bundles[1:]:
        common &= set(b.metrics)
    names = [m for m in bundles[0].metrics if m in common]
    if not names:
        have = "; ".join(f"{b.label}: {_some(list(b.metrics))}" for b in bundles)
        raise UserError(f"the bundles share no metric ({have})")
    return names


def _some(names: list[str], shown: int = 4) -> str:
    if not names:
        return "no metric"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def comparison_rows(bundles: list[BundleSummary], metrics: list[str]) -> list[dict[str, Any]]:
    """Long-format rows (bundle, experiment, metric, mean, ci_low, ci_high, n, k, method),
    metric-major."""
    return [{"bundle": b.label, "experiment": b.experiment, "metric": m,
             "mean": b.metrics[m].mean, "ci_low": b.metrics[m].ci_low,
             "ci_high": b.metrics[m].ci_high, "n": b.metrics[m].n,
             "k": "" if b.metrics[m].k is None else b.metrics[m].k,
             "method": b.metrics[m].method}
            for m in metrics for b in bundles]


def comparison_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: cell_value(r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def format_table(bundles: list[BundleSummary], metrics: list[str]) -> str:
    """A legend of the bundles, then one row per metric: per bundle the estimate with its 95%
    interval, and k/n (proportion) or n with the interval's method."""
    legend = [f"[{i}] {b.label} ({b.experiment})" for i, b in enumerate(bundles, start=1)]
    rows = [["metric", *(f"[{i}] estimate [95% interval]" for i in range(1, len(bundles) + 1))]]
    for m in metrics:
        cells = []
        for b in bundles:
            s = b.metrics[m]
            text = format_estimate(s.raw)
            if s.k is None:
                text += f" (n={s.n}{', ' + s.method if s.method and s.n > 1 else ''})"
            else:
                text += f" ({s.method})"
            cells.append(text)
        rows.append([m, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*legend, "", *lines])


def plot_comparison(bundles: list[BundleSummary], metrics: list[str], out_dir: Path) -> str:
    """One small bar chart per metric (a bar per bundle, 95% CI error bars); returns the stem."""
    import matplotlib.pyplot as plt

    from reporting import plotting

    ncols = min(PLOT_COLUMNS, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    colors = plt.get_cmap("tab10").colors
    with plt.rc_context(plotting.STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.7 * nrows + 0.8),
                                 squeeze=False)
        xs = list(range(len(bundles)))
        for ax, m in zip(axes.flat, metrics, strict=False):
            means = [b.metrics[m].mean for b in bundles]
            below = [0.0 if math.isnan(b.metrics[m].ci_low) else b.metrics[m].mean
                     - b.metrics[m].ci_low for b in bundles]
            above = [0.0 if math.isnan(b.metrics[m].ci_high) else b.metrics[m].ci_high
                     - b.metrics[m].mean for b in bundles]
            ax.bar(xs, [0.0 if math.isnan(v) else v for v in means],
                   yerr=[below, above], capsize=4,
                   color=[colors[i % len(colors)] for i in xs])
            for x, v in zip(xs, means, strict=True):
                if math.isnan(v):
                    ax.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=8)
            finite = [v for v in means if not math.isnan(v)]
            if all(v >= 0 for v in finite):
                # Non-negative metrics (counts, shares, times): anchor the axis at zero.
                ax.set_ylim(bottom=0, top=None if any(finite) else 1)
            ax.set_title(m, fontsize=9)
            ax.set_xticks(xs, [f"[{i + 1}]\nn={b.metrics[m].n}" for i, b in enumerate(bundles)])
            ax.tick_params(labelsize=8)
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        legend = "   ".join(f"[{i}] {b.label}" for i, b in enumerate(bundles, start=1))
        fig.suptitle(f"Estimate and 95% interval per metric\n{legend}", fontsize=9)
    return plotting.save(fig, out_dir, PLOT_STEM)


def compare(paths: list[Path], out_dir: Path) -> tuple[str, Path]:
    """Load, compare, write CSV and plot into ``out_dir``; returns (table, out_dir)."""
    if len(paths) < 2:
        raise UserError("give at least two bundles to compare")
    bundles = load_bundles(paths)
    metrics = shared_metrics(bundles)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / CSV_NAME, comparison_csv(comparison_rows(bundles, metrics)))
    except OSError as exc:
        raise UserError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
    plot_comparison(bundles, metrics, out_dir)
    return format_table(bundles, metrics), out_dir


def _compare_cli(args: argparse.Namespace) -> int:
    out = args.out or Path("results") / "compare" / utc_stamp()
    table, out_dir = compare(args.bundle, out)
    print(table)
    print(f"\ncomparison: {out_dir / CSV_NAME}, {out_dir / PLOT_STEM}.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m experiments.compare",
                      description="Put the metrics several results bundles share side by side.")
    p.add_argument("bundle", nargs="+", type=Path, help="results bundle folders (two or more)")
    p.add_argument("--out", type=Path, default=None,
                   help="where comparison.csv and the plot go (default: "
                        "results/compare/<UTC timestamp>)")
    return run_main(lambda: _compare_cli(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
