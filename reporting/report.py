"""``python -m experiments.report BUNDLE_DIR``: (re)write a bundle's self-contained ``report.html``.

The report is a pure function of the bundle's files (``manifest.json``, ``config.json``,
``summary.json``, ``metrics.csv``, the plots, ``raw/trial-NNN/error.txt``): no root, no
network, no clock, so the same bundle always gives the same bytes. It is self-contained: CSS
inline, every plot embedded as a base64 ``data:`` image, no script, no font, no external URL;
a Content-Security-Policy forbids the browser to fetch anything else. Every string read from
a file is HTML-escaped, and ``://`` in such text is written as ``&#58;//`` so the file holds
no literal URL at all (a browser shows it unchanged).
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import logging
import math
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, run_main
from common.errors import UserError
from common.files import atomic_write_text
from reporting.bundle import read_bundle_json, read_json_object
from reporting.manifest import MANIFEST_KEYS, Manifest

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
# Per-trial metric values are listed for runs up to this many trials (wider tables are noise).
MAX_TRIAL_COLUMNS = 20
ERROR_TAIL_LINES = 20
NA = "\u2013"  # what a missing or non-finite number shows

# Manifest keys rendered in their own section; anything else lands under "other entries".
# The manifest keys shown in their own sections; the rest is listed as "other entries"
# (``conditions`` among them: it has no section of its own).
_KNOWN_KEYS = set(MANIFEST_KEYS) - {"conditions"}
_PLATFORM_LABELS = {
    "kernel": "kernel",
    "ovs_version": "Open vSwitch version",
    "datapath": "OVS datapath",
    "ovs_kernel_module": "OVS kernel module present",
    "tx_checksum_offload_off": "TX checksum offload off on host interfaces",
    "netem": "netem available",
    "nmap": "nmap",
    "python": "Python",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f6f7f9;color:#1d2330;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff;
box-shadow:0 0 8px rgba(0,0,0,.08)}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 8px;
border-bottom:2px solid #dde3ec;padding-bottom:4px}h3{font-size:1.05em;margin:18px 0 6px}
.sub{color:#5a6475;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:.92em}
th,td{border:1px solid #d5dbe5;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:.9em}
pre{background:#f3f4f6;padding:8px;overflow-x:auto;white-space:pre-wrap;margin:4px 0}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.bad{background:#fde8e8;border:1px solid #e0a0a0;color:#8a1c1c}
.banner.warn{background:#fff4dc;border:1px solid #e5c77a;color:#6b4b00}
.banner.good{background:#e6f5ea;border:1px solid #9fd0ad;color:#1d5b2e}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600}
.pill.ok,.pill.pass{background:#d8f0de;color:#1d5b2e}
.pill.failed,.pill.fail{background:#f8d4d4;color:#8a1c1c}
.pill.invalid,.pill.saturated{background:#ffe7b3;color:#6b4b00}
.pill.other{background:#e4e7ec;color:#333}
td.notscored{color:#8a8f99;font-style:italic}
figure{margin:16px 0 28px}figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{color:#3c4656;font-size:.92em;margin-top:4px}
.muted{color:#6b7383}td code{word-break:break-all}
.cols{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}.cols h3{margin-top:6px}
"""

# The browser may load nothing but this file's own inline style and data: images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class Html(str):
    """A string that is already HTML (built here from escaped parts); never escaped again."""


def esc(value: Any) -> str:
    """Escape text from a file for HTML; ``://`` becomes ``&#58;//`` (no literal URLs)."""
    return html.escape(str(value), quote=True).replace("://", "&#58;//")


def fmt_num(value: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant digits; None/NaN → ``NA``; other values as text."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return NA
        return f"{value:.{digits}g}"
    return str(value)


def pill(text: str, kind: str) -> Html:
    return Html(f'<span class="pill {esc(kind)}">{esc(text)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          numeric: Sequence[int] = ()) -> Html:
    """An HTML table; cells are escaped unless they are :class:`Html`.

    numeric: column indices right-aligned (their cells formatted with :func:`fmt_num`).
    """
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            if isinstance(cell, Html):
                cls = ' class="num"' if i in numeric else ""
                out.append(f"<td{cls}>{cell}</td>")
            elif i in numeric:
                out.append(f'<td class="num">{esc(fmt_num(cell))}</td>')
            else:
                out.append(f"<td>{esc(fmt_num(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return Html("".join(out))


@dataclass
class BundleFiles:
    """What the report reads from a bundle (missing files are empty)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    metrics_rows: list[dict[str, str]] = field(default_factory=list)
    error_tails: dict[int, str] = field(default_factory=dict)


def load_bundle(bundle: Path) -> BundleFiles:
    """Read the files the report needs; UserError when ``bundle`` is not a results bundle."""
    bundle = Path(bundle)
    manifest = read_bundle_json(bundle, "manifest.json")
    files = BundleFiles(path=bundle, manifest=manifest,
                        config=read_json_object(bundle / "config.json") or {},
                        summary=read_json_object(bundle / "summary.json"))
    metrics = bundle / "metrics.csv"
    if metrics.exists():
        try:
            with open(metrics, newline="") as f:
                files.metrics_rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.warning("cannot read %s: %s", metrics, exc)
    for rec in _trial_records(manifest):
        if rec.get("status") == "failed" and isinstance(rec.get("trial"), int):
            err = bundle / "raw" / f"trial-{rec['trial']:03d}" / "error.txt"
            try:
                lines = err.read_text(errors="replace").rstrip().splitlines()
            except OSError:
                continue
            files.error_tails[rec["trial"]] = "\n".join(lines[-ERROR_TAIL_LINES:])
    return files


def _trial_records(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    trials = manifest.get("trials")
    return [t for t in trials if isinstance(t, dict)] if isinstance(trials, list) else []


def _check_failed(ok: int, n: int | None) -> bool:
    return ok < n if n is not None else ok == 0


# ---------------------------------------------------------------------------------------------
# Sections


def _status_banners(b: BundleFiles) -> list[str]:
    m = b.manifest
    trials = _trial_records(m)
    failed = [t for t in trials if t.get("status") == "failed"]
    invalid = [t for t in trials if t.get("status") == "invalid"]
    checks = Manifest.from_dict(m).validity_counts()
    bad_checks = [name for name, (ok, n) in checks.items() if _check_failed(ok, n)]
    out = []
    if bad_checks or invalid:
        out.append(
            '<div class="banner bad">INVALID RUN: validity check(s) failed: '
            f"{esc(', '.join(bad_checks) or 'see the trial table')}. The metrics of the "
            f"{len(invalid)} invalid trial(s) are not scored: they are left out of the summary."
            "</div>")
    if m.get("interrupted"):
        out.append('<div class="banner warn">INTERRUPTED: the run stopped early; only the '
                   "trials completed before the interrupt are in this bundle.</div>")
    elif not m.get("complete"):
        out.append('<div class="banner warn">INCOMPLETE: the manifest does not say the run '
                   "completed (still running, or killed outright).</div>")
    if failed:
        out.append(f'<div class="banner bad">{len(failed)} of {len(trials)} trial(s) FAILED; '
                   "their errors are in the trial table.</div>")
    sat = _saturated_trials(m)
    if sat:
        out.append('<div class="banner warn">SATURATED HOST: the CPU was nearly fully busy '
                   f"during trial(s) {esc(', '.join(map(str, sat)))}; their timing metrics "
                   "measure the machine as much as the network (see Fidelity).</div>")
    if not out and trials:
        out.append('<div class="banner good">Complete run: every trial ok, every validity '
                   "check passed.</div>")
    return out


def _saturated_trials(m: dict[str, Any]) -> list[Any]:
    sat = [t.get("trial") for t in _trial_records(m)
           if isinstance(t.get("fidelity"), dict) and t["fidelity"].get("saturated")]
    run = m.get("fidelity")
    if not sat and isinstance(run, dict) and isinstance(run.get("saturated_trials"), list):
        sat = run["saturated_trials"]
    return sat


def _section_run(b: BundleFiles) -> str:
    m = b.manifest
    command = m.get("command")
    cmd = shlex.join(map(str, command)) if isinstance(command, list) else str(command or NA)
    trials = _trial_records(m)
    status = ("interrupted" if m.get("interrupted")
              else "complete" if m.get("complete") else "not complete")
    controller = m.get("controller") if isinstance(m.get("controller"), dict) else {}
    facts: list[tuple[str, Any]] = [
        ("experiment", m.get("experiment", b.config.get("experiment", NA))),
        ("bundle", b.path.resolve().name),
        ("command line", Html(f"<code>{esc(cmd)}</code>")),
        ("git commit", m.get("git_commit")),
        ("started (UTC)", m.get("started_utc")),
        ("ended (UTC)", m.get("ended_utc")),
        ("seed", m.get("seed")),
        ("topology", m.get("topology")),
        ("trials requested / recorded", f"{fmt_num(m.get('trials_requested'))} / {len(trials)}"),
        ("run status", Html(pill(status, "ok" if status == "complete" else "invalid"))),
        ("controller engine", controller.get("engine")),
        ("controller version", controller.get("version")),
    ]
    platform = m.get("platform") if isinstance(m.get("platform"), dict) else {}
    for key, value in platform.items():
        facts.append((_PLATFORM_LABELS.get(key, key), value))
    parts = ['<h2 id="run">What ran</h2>', '<div class="cols">',
             "<div>", table(("fact", "value"), facts), "</div>"]
    side = []
    if b.config:
        side += ["<h3>Configuration (resolved)</h3>",
                 table(("key", "value"), ((k, _plain(v)) for k, v in b.config.items()))]
    packages = m.get("packages")
    if isinstance(packages, dict) and packages:
        side += ["<h3>Package versions</h3>", table(("package", "version"), packages.items())]
    if side:
        parts += ["<div>", *side, "</div>"]
    parts.append("</div>")
    other = {k: v for k, v in m.items() if k not in _KNOWN_KEYS}
    if other:
        parts += ["<h3>Other manifest entries</h3>",
                  table(("key", "value"), ((k, _plain(v)) for k, v in other.items()))]
    return "\n".join(parts)


def _plain(value: Any) -> Any:
    """Scalars as they are; lists and objects as compact JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _section_validity(b: BundleFiles) -> str:
    checks = Manifest.from_dict(b.manifest).validity_counts()
    parts = ['<h2 id="validity">Validity checks</h2>']
    if not checks:
        parts.append('<p class="muted">This experiment declares no validity check (or no '
                     "trial completed).</p>")
        return "\n".join(parts)
    rows = []
    for name, (ok, n) in checks.items():
        passed = not _check_failed(ok, n)
        if n is not None:
            detail = f"passed in {ok} of {n} trial(s)"
        else:
            detail = "passed in every trial" if passed else "failed in at least one trial"
        rows.append((name, pill("pass" if passed else "FAIL", "pass" if passed else "fail"),
                     detail))
    parts.append(table(("check", "result", "trials"), rows))
    if any(_check_failed(ok, n) for ok, n in checks.values()):
        parts.append("<p>A trial that fails a check is marked <b>invalid</b>: its metrics stay "
                     "in <code>metrics.csv</code> (valid = false) but are <b>not scored</b> in "
                     "the summary.</p>")
    return "\n".join(parts)


def _timeline(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return NA
    return ", ".join(f"{k} {fmt_num(v, 3)}" for k, v in value.items())


def _section_trials(b: BundleFiles) -> str:
    trials = _trial_records(b.manifest)
    parts = ['<h2 id="trials">Trials</h2>']
    if not trials:
        parts.append('<p class="muted">No trial was recorded.</p>')
        return "\n".join(parts)
    rows = []
    for t in trials:
        status = str(t.get("status", "?"))
        kind = status if status in ("ok", "failed", "invalid") else "other"
        cell = pill(status, kind)
        fid = t.get("fidelity")
        if isinstance(fid, dict) and fid.get("saturated"):
            cell = Html(cell + " " + pill("saturated", "saturated"))
        error: Any = t.get("error") or ("metrics not scored (validity check failed)"
                                        if status == "invalid" else "")
        tail = b.error_tails.get(t.get("trial")) if isinstance(t.get("trial"), int) else None
        if tail:
            error = Html(f"{esc(error)}<details><summary>traceback (raw/trial-"
                         f"{t['trial']:03d}/error.txt)</summary><pre>{esc(tail)}</pre></details>")
        rows.append((t.get("trial"), t.get("seed"), cell, t.get("duration_s"),
                     _timeline(t.get("timeline")), error))
    parts.append(table(("trial", "seed", "status", "duration (s)", "timeline (s)", "error"),
                       rows, numeric=(0, 1, 3)))
    return "\n".join(parts)


def _section_summary(b: BundleFiles) -> str:
    parts = ['<h2 id="summary">Summary</h2>']
    s = b.summary
    if s is None:
        parts.append('<p class="muted">No <code>summary.json</code> in this bundle (the run '
                     "was still going or was killed before writing it).</p>")
        return "\n".join(parts)
    counts = [("trials completed", s.get("trials_completed")),
              ("trials failed", s.get("trials_failed")),
              ("trials invalid (not scored)", s.get("trials_invalid"))]
    parts.append(table(("", "count"), counts, numeric=(1,)))
    metrics = s.get("metrics") if isinstance(s.get("metrics"), dict) else {}
    if metrics:
        rows = []
        for name, st in metrics.items():
            st = st if isinstance(st, dict) else {}
            ci = st.get("ci95")
            rows.append((name, st.get("mean"),
                         Html("±&nbsp;" + esc(fmt_num(ci))) if _finite(ci) else NA,
                         st.get("n"), st.get("median"), st.get("min"), st.get("max")))
        parts.append("<p>Across valid trials: mean, half-width of the 95% confidence interval "
                     "(Student t; needs n ≥ 2), n, median, minimum, maximum.</p>")
        parts.append(table(("metric", "mean", "95% CI", "n", "median", "min", "max"), rows,
                           numeric=(1, 2, 3, 4, 5, 6)))
    else:
        parts.append('<div class="banner bad">No metric is scored: no trial both completed '
                     "and passed every validity check.</div>")
    failures = s.get("failures")
    if isinstance(failures, list) and failures:
        parts.append("<h3>Failures</h3><ul>" + "".join(f"<li><code>{esc(f)}</code></li>"
                                                       for f in failures) + "</ul>")
    parts.append(_per_trial_metrics(b))
    return "\n".join(p for p in parts if p)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _per_trial_metrics(b: BundleFiles) -> str:
    """metrics.csv as a metric-by-trial table; values of invalid trials marked not scored."""
    rows = b.metrics_rows
    if not rows:
        return ""
    trials: list[str] = []
    valid: dict[str, bool] = {}
    values: dict[str, dict[str, str]] = {}
    for r in rows:
        trial, metric = r.get("trial", ""), r.get("metric", "")
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


def _pct(v: Any) -> str:
    return f"{v * 100:.1f} %" if _finite(v) else NA


def _section_fidelity(b: BundleFiles) -> str:
    m = b.manifest
    per = [(t.get("trial"), t["fidelity"]) for t in _trial_records(m)
           if isinstance(t.get("fidelity"), dict)]
    run = m.get("fidelity") if isinstance(m.get("fidelity"), dict) else None
    if not per and run is None:
        return ""
    threshold = (run or {}).get("low_idle_threshold", per[0][1].get("low_idle_threshold")
                                if per else None)
    share = (run or {}).get("saturated_share", per[0][1].get("saturated_share")
                            if per else None)
    parts = ['<h2 id="fidelity">Fidelity (host CPU during the trials)</h2>',
             "<p>CPU idle share sampled from <code>/proc/stat</code> during each trial, as "
             "Mininet-HiFi does. A sample is low-idle when less than "
             f"{esc(_pct(threshold))} of the CPU time was idle; a trial is <b>saturated</b> "
             f"when at least {esc(_pct(share))} of its samples are low-idle. Saturation does "
             "not invalidate a trial, but its latencies measure the machine as much as the "
             "emulated network.</p>"]
    if per:
        rows = []
        for trial, f in per:
            rows.append((trial, f.get("n_samples"), f.get("interval_s"),
                         _pct(f.get("mean_idle_share")), _pct(f.get("min_idle_share")),
                         _pct(f.get("low_idle_sample_share")),
                         _pct(f.get("min_busiest_core_idle_share")),
                         pill("SATURATED", "saturated") if f.get("saturated")
                         else pill("ok", "ok")))
        parts.append(table(("trial", "samples", "interval (s)", "mean idle", "min idle",
                            "low-idle samples", "busiest core, min idle", "host"), rows,
                           numeric=(0, 1, 2, 3, 4, 5, 6)))
    if run is not None:
        sat = run.get("saturated_trials") or []
        parts.append(f"<p>Monitored trials: {esc(fmt_num(run.get('monitored_trials')))}; "
                     f"saturated: {esc(', '.join(map(str, sat)) if sat else 'none')}.</p>")
    return "\n".join(parts)


def _plot_entries(b: BundleFiles) -> list[tuple[str, str | None]]:
    """(stem, caption) from the manifest, then any other plot file of the bundle uncaptioned."""
    entries: list[tuple[str, str | None]] = []
    plots = b.manifest.get("plots")
    if isinstance(plots, list):
        for p in plots:
            if isinstance(p, dict) and isinstance(p.get("stem"), str):
                entries.append((p["stem"], str(p.get("caption") or "")))
    listed = {s for s, _ in entries}
    extra = sorted({p.stem for p in b.path.iterdir()
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


def _section_plots(b: BundleFiles) -> str:
    parts = ['<h2 id="plots">Plots</h2>']
    entries = _plot_entries(b)
    if not entries:
        parts.append('<p class="muted">No plot in this bundle.</p>')
    for stem, caption in entries:
        tag = _image_tag(b.path, stem, caption or stem)
        body = tag or (f'<p class="muted">Plot file {esc(stem)}.png/.svg is missing; redraw '
                       "with <code>python -m experiments.plot</code>.</p>")
        cap = esc(caption) if caption else '<span class="muted">(no caption recorded)</span>'
        parts.append(f"<figure>{body}<figcaption><b>{esc(stem)}</b>: {cap}</figcaption>"
                     "</figure>")
    return "\n".join(parts)


def render_report(b: BundleFiles) -> str:
    """The whole HTML document (a pure function of ``b``)."""
    exp = b.manifest.get("experiment") or b.config.get("experiment") or "experiment"
    title = f"{exp} — {b.path.resolve().name}"
    sections = [_section_run(b), _section_validity(b), _section_trials(b),
                _section_summary(b), _section_fidelity(b), _section_plots(b)]
    nav = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("run", "what ran"), ("validity", "validity"), ("trials", "trials"),
        ("summary", "summary"), ("fidelity", "fidelity"), ("plots", "plots"))
        if a != "fidelity" or sections[4])
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        '<p class="sub">SDN-ICS Lab results bundle report, generated from the bundle\'s files '
        "by <code>python -m experiments.report</code>.</p>",
        f"<p>{nav}</p>",
        *_status_banners(b),
        *(s for s in sections if s),
        "</main></body></html>",
        "",
    ])


def write_report(bundle_dir: Path) -> Path:
    """Write ``report.html`` into the bundle (atomically) and return its path."""
    files = load_bundle(Path(bundle_dir))
    out = files.path / REPORT_NAME
    try:
        atomic_write_text(out, render_report(files))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _write_reports(args: argparse.Namespace) -> int:
    for b in args.bundle:
        print(write_report(b))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m experiments.report",
                      description="(Re)write the self-contained report.html of results "
                                  "bundle(s).")
    p.add_argument("bundle", nargs="+", type=Path, help="results bundle folder(s)")
    return run_main(lambda: _write_reports(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
