"""The results half of ``report.html``: the headline table (estimates with their intervals, k/n
and methods, per condition), the paired comparisons, the per-trial values and the plots.

Pure functions of what was read from the bundle (``summary.json``, ``metrics.csv``, the plot
files); :mod:`reporting.report` puts them first on the page and the provenance after.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reporting.html import NA, Html, esc, fmt_num, table
from reporting.summary import condition_trials, metric_entries, paired_entries

log = logging.getLogger(__name__)

# Per-trial metric values are listed for runs up to this many trials (wider tables are noise).
MAX_TRIAL_COLUMNS = 20

_METHOD_NAMES = {"wilson": "Wilson score", "clopper-pearson": "Clopper-Pearson (exact)",
                 "t": "Student t", "mcnemar-exact": "McNemar exact", "paired-t": "paired t"}


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _interval(st: Mapping[str, Any], digits: int) -> str:
    lo, hi = st.get("ci_low"), st.get("ci_high")
    if finite(lo) and finite(hi):
        return f"[{fmt_num(lo, digits)}, {fmt_num(hi, digits)}]"
    return str(st.get("note") or "no interval")


def _estimate_cells(st: Mapping[str, Any]) -> tuple[Any, str, str, str]:
    """(estimate, 95% interval, k/n or n, method) of one summary entry."""
    method = _METHOD_NAMES.get(str(st.get("method")), str(st.get("method") or NA))
    if st.get("kind") == "proportion":
        mean = st.get("mean")
        est = f"{mean:.2f}" if finite(mean) else NA
        lo, hi = st.get("ci_low"), st.get("ci_high")
        ival = f"[{lo:.2f}, {hi:.2f}]" if finite(lo) and finite(hi) else NA
        return est, ival, f"{st.get('k')}/{st.get('n')} over {st.get('trials')} trial(s)", method
    return st.get("mean"), _interval(st, 4), f"n={fmt_num(st.get('n'))}", method


def section_results(summary: Mapping[str, Any] | None,
                    metrics_rows: Sequence[Mapping[str, str]]) -> str:
    """The headline: per condition and metric the estimate, its 95% interval, k/n, method."""
    parts = ['<h2 id="results">Results</h2>']
    if summary is None:
        parts.append('<p class="muted">No <code>summary.json</code> in this bundle (the run '
                     "was still going or was killed before writing it).</p>")
        return "\n".join(parts)
    entries = metric_entries(summary)
    if entries:
        rows = [(e.condition, e.metric, *_estimate_cells(e.stats)) for e in entries]
        parts.append("<p>Per condition, over the trials whose premise held: the estimate, its "
                     "95% interval, the counts it rests on and the interval's method. A "
                     "proportion pools its successes and attempts over the trials (k/n); a "
                     "continuous metric has n = trials. See <code>docs/statistics.md</code>."
                     "</p>")
        parts.append(table(("condition", "metric", "estimate", "95% interval", "k/n or n",
                            "method"), rows, numeric=(2,), cls="headline"))
    else:
        parts.append('<div class="banner bad">No metric is scored: no trial both completed '
                     "and passed every validity check.</div>")
    parts.append(_trial_counts(summary))
    parts.append(_paired(summary))
    failures = summary.get("failures")
    if isinstance(failures, list) and failures:
        parts.append("<h3>Failures</h3><ul>" + "".join(f"<li><code>{esc(f)}</code></li>"
                                                       for f in failures) + "</ul>")
    parts.append(per_trial_metrics(metrics_rows))
    return "\n".join(p for p in parts if p)


def _trial_counts(summary: Mapping[str, Any]) -> str:
    per = condition_trials(summary)
    if per:
        rows = []
        for cond, t in per.items():
            checks = t.get("failed_checks") if isinstance(t.get("failed_checks"), dict) else {}
            why = ", ".join(f"{c}: {n}" for c, n in checks.items()) or ""
            rows.append((cond, t.get("scored"), t.get("premise_failed"), why, t.get("failed")))
        return ("<h3>Trials per condition</h3><p>A trial whose premise failed (a validity "
                "check) is counted here and not scored; a failed trial ended in an error.</p>"
                + table(("condition", "scored", "premise failed", "failed checks", "failed"),
                        rows, numeric=(1, 2, 4)))
    counts = [("trials completed", summary.get("trials_completed")),
              ("trials failed", summary.get("trials_failed")),
              ("trials invalid (not scored)", summary.get("trials_invalid"))]
    return table(("", "count"), counts, numeric=(1,))


def _paired(summary: Mapping[str, Any]) -> str:
    paired = paired_entries(summary)
    if not paired:
        return ""
    rows = []
    for p in paired:
        ival = _interval(p, 3) if p.get("method") == "paired-t" else (
            f"discordant: {p.get('a')} only {p.get('a_only')}, {p.get('b')} only "
            f"{p.get('b_only')}" if p.get("method") == "mcnemar-exact" else NA)
        rows.append((f"{p.get('b')} - {p.get('a')}", p.get("metric"), p.get("mean_diff"),
                     ival, p.get("p_value"), p.get("n_pairs"),
                     _METHOD_NAMES.get(str(p.get("method")), str(p.get("method")))))
    return ("<h3>Paired comparisons (same seeds)</h3><p>Each pair is one trial run under both "
            "conditions with the same seed. Binary outcomes: McNemar's exact test on the "
            "discordant pairs; otherwise a paired t test on the per-trial differences.</p>"
            + table(("difference", "metric", "mean difference", "95% interval", "p",
                     "pairs", "test"), rows, numeric=(2, 4, 5)))


def per_trial_metrics(rows: Sequence[Mapping[str, str]]) -> str:
    """metrics.csv as a metric-by-trial table; values of invalid trials marked not scored."""
    if not rows:
        return ""
    trials: list[str] = []
    valid: dict[str, bool] = {}
    values: dict[str, dict[str, str]] = {}
    for r in rows:
        trial = r.get("trial", "")
        if r.get("condition"):
            trial = f"{trial} [{r['condition']}]"
        metric = r.get("metric", "")
        if trial not in valid:
            trials.append(trial)
        valid[trial] = str(r.get("valid", "true")).lower() == "true"
        values.setdefault(metric, {})[trial] = r.get("value", "")
    if len(trials) > MAX_TRIAL_COLUMNS:
        return (f'<p class="muted">Per-trial values of {len(trials)} trials: see '
                "<code>metrics.csv</code>.</p>")
    headers = ["metric"] + [f"trial {t}" + ("" if valid[t] else " (invalid, not scored)")
                            for t in trials]
    out = ["<h3>Per-trial values (metrics.csv)</h3><table><thead><tr>",
           *(f"<th>{esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for metric, per in values.items():
        out.append(f"<tr><td>{esc(metric)}</td>")
        for t in trials:
            raw = per.get(t, "")
            try:
                text = fmt_num(float(raw)) if raw != "" else NA
            except ValueError:
                text = raw
            cls = "num" if valid[t] else "num notscored"
            out.append(f'<td class="{cls}">{esc(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _plot_entries(path: Path, manifest: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(stem, caption) from the manifest, then any other plot file of the bundle uncaptioned."""
    entries: list[tuple[str, str | None]] = []
    plots = manifest.get("plots")
    if isinstance(plots, list):
        for p in plots:
            if isinstance(p, dict) and isinstance(p.get("stem"), str):
                entries.append((p["stem"], str(p.get("caption") or "")))
    listed = {s for s, _ in entries}
    extra = sorted({p.stem for p in path.iterdir()
                    if p.suffix in (".png", ".svg") and p.is_file()} - listed)
    entries += [(s, None) for s in extra]
    return entries


def _image_tag(bundle: Path, stem: str, alt: str) -> str | None:
    # A stem is a file name inside the bundle, never a path out of it.
    if not stem or Path(stem).name != stem or stem in (".", ".."):
        return None
    for suffix, mime in ((".png", "image/png"), (".svg", "image/svg+xml")):
        path = bundle / f"{stem}{suffix}"
        if path.is_file():
            try:
                data = base64.b64encode(path.read_bytes()).decode("ascii")
            except OSError as exc:
                log.warning("cannot read %s: %s", path, exc)
                continue
            return f'<img src="data:{mime};base64,{data}" alt="{esc(alt)}">'
    return None


def section_plots(path: Path, manifest: Mapping[str, Any]) -> str:
    """Every plot of the bundle embedded as a data: image, with its caption."""
    parts = ['<h2 id="plots">Plots</h2>']
    entries = _plot_entries(path, manifest)
    if not entries:
        parts.append('<p class="muted">No plot in this bundle.</p>')
    for stem, caption in entries:
        tag = _image_tag(path, stem, caption or stem)
        body = tag or (f'<p class="muted">Plot file {esc(stem)}.png/.svg is missing; redraw '
                       "with <code>python -m experiments.plot</code>.</p>")
        cap = esc(caption) if caption else '<span class="muted">(no caption recorded)</span>'
        parts.append(f"<figure>{body}<figcaption><b>{esc(stem)}</b>: {cap}</figcaption>"
                     "</figure>")
    return Html("\n".join(parts))
