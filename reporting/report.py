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
import csv
import json
import logging
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.cli import OneLineParser, run_main
from common.errors import UserError
from common.files import atomic_write_text
from reporting.bundle import read_bundle_json, read_json_object
from reporting.html import CSP, CSS, NA, Html, esc, fmt_num, pill, table
from reporting.manifest import MANIFEST_KEYS, Manifest
from reporting.report_results import finite, section_plots, section_results

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
ERROR_TAIL_LINES = 20

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
            f"{len(invalid)} invalid trial(s) are not scored: each is counted as <b>premise "
            "failed</b> in the results.</div>")
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
    parts = ['<h2 id="run">Provenance: what ran, where, with which configuration</h2>',
             '<div class="cols">',
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


def _pct(v: Any) -> str:
    return f"{v * 100:.1f} %" if finite(v) else NA


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


def render_report(b: BundleFiles) -> str:
    """The whole HTML document (a pure function of ``b``): what a reader came for first (the
    results with their intervals, the plots), then the trials and checks, provenance last."""
    exp = b.manifest.get("experiment") or b.config.get("experiment") or "experiment"
    title = f"{exp} — {b.path.resolve().name}"
    sections = {
        "results": ("results", section_results(b.summary, b.metrics_rows)),
        "plots": ("plots", section_plots(b.path, b.manifest)),
        "trials": ("trials", _section_trials(b)),
        "validity": ("validity", _section_validity(b)),
        "fidelity": ("fidelity", _section_fidelity(b)),
        "run": ("provenance", _section_run(b)),
    }
    nav = " · ".join(f'<a href="#{anchor}">{name}</a>'
                     for anchor, (name, body) in sections.items() if body)
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
        *(body for _, body in sections.values() if body),
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
