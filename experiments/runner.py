"""Running an experiment: trials, progress, statistics, the bundle.

The CLI (``experiments.run``) parses and validates; this module does the work. A failed trial
is recorded with its error and the run goes on; an interrupt stops after teardown with
everything completed already on disk.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import traceback
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import Interrupted, LabError, UserError
from common.plan import AddressPlan, plan_for
from dashboard.progresslog import PROGRESS_LOG
from experiments.progress import LoggedProgress, Progress, QuietProgress
from experiments.spec import Experiment, TrialResult
from lab import fidelity, platform
from lab.capture import CaptureSpec, parse_capture
from lab.cluster import load_cluster
from lab.dashboard import DashboardProcess, port_free, start_dashboard
from lab.devices import load_plant_plan
from lab.lifecycle import Lab, LabConfig, running_lab
from lab.views import format_table
from lab.warm import WarmLabs
from reporting.bundle import Bundle, git_commit, package_versions
from reporting.manifest import Manifest, TrialRecord
from reporting.report import write_report
from reporting.stats import format_estimate
from reporting.summary import (
    NO_CONDITION,
    ConditionTrials,
    build_summary,
    condition_trials,
    metric_entries,
    paired_entries,
)

log = logging.getLogger(__name__)

PACKAGES = ("ryu", "os-ken", "eventlet", "pymodbus", "scapy", "matplotlib", "mininet")


def engine_version(engine: str) -> str:
    return package_versions([engine])[engine]


def trial_seed(seed: int, trial: int) -> int:
    """A per-trial seed that depends only on (seed, trial)."""
    return random.Random(f"sdnics:{seed}:{trial}").randrange(2**31)


@dataclass
class TrialContext:
    """What a trial function gets.

    trial: 1-based index. seed: this trial's own seed (the same for every condition of the
    trial). raw_dir: where the trial's raw outputs go (inside the bundle). condition: which of
    the experiment's conditions (e.g. a defense) this run is, "" when it has none. rng: seeded
    with ``seed``. labs: the run's kept lab (:mod:`lab.warm`); None: every lab is fresh.
    """

    exp: Experiment
    config: dict[str, Any]
    trial: int
    seed: int
    raw_dir: Path
    plan: AddressPlan
    engine: str
    datapath: str
    progress: Progress = field(default_factory=QuietProgress)
    capture: CaptureSpec | None = None
    condition: str = ""
    labs: WarmLabs | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def stage(self, text: str) -> None:
        """Tell the user what the trial is doing now (progress bar or a line)."""
        self.progress.stage(text)

    def open_lab(self, cfg: LabConfig, reusable: bool = False
                 ) -> AbstractContextManager[Lab]:
        """The running lab for ``cfg``: the run's kept one when ``reusable`` (the trial leaves
        nothing in the hosts that a reset does not undo) and it matches, else a fresh one."""
        if self.labs is None:
            return running_lab(cfg)
        return self.labs.lab(cfg, reusable)

    def lab_config(self, **overrides: Any) -> LabConfig:
        opts: dict[str, Any] = {
            "plan": self.plan,
            "log_dir": self.raw_dir,
            "engine": self.engine,
            "datapath": self.datapath,
            "link_delay_ms": self.config["link_delay_ms"],
            "link_loss_pct": self.config["link_loss_pct"],
            "connect_timeout_s": self.config["connect_timeout_s"],
            "capture": self.capture,
            "cluster": load_cluster(self.config["cluster"]) if self.config.get("cluster")
            else None,
        }
        opts.update(overrides)
        return LabConfig(**opts)


@dataclass
class RunOutcome:
    bundle: Path
    summary: dict[str, Any]
    failed: int
    completed: int
    interrupted: bool


def condition_order(conditions: list[str], seed: int) -> list[str]:
    """The order a trial runs its conditions in: shuffled from the trial's own seed, so that
    no condition always runs first (warm caches, a drifting host) and a rerun repeats it."""
    order = list(conditions)
    random.Random(f"sdnics-order:{seed}").shuffle(order)
    return order


def _interval_cells(st: Mapping[str, Any]) -> tuple[str, str, str]:
    """(estimate with its interval, k/n or n, method) of one summary entry."""
    text = format_estimate(st)
    if st.get("kind") == "proportion":
        est, _, kn = text.rpartition(" ")
        return est, f"{kn} ({st.get('trials')} trials)", str(st.get("method", ""))
    return text, f"n={st.get('n')}", str(st.get("method", ""))


def _p(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.3g}"


def summary_table(summary: Mapping[str, Any]) -> str:
    """The end-of-run table: per condition and metric the estimate with its 95% interval,
    k/n (proportions) or n, and the interval's method; then premise failures and the paired
    tests between conditions."""
    rows = [("condition", "metric", "estimate [95% interval]", "k/n or n", "method")]
    for e in metric_entries(summary):
        rows.append((e.condition, e.metric, *_interval_cells(e.stats)))
    if len(rows) == 1:
        return "no metric scored (no trial completed with its premise intact)"
    lines = format_table(rows[0], rows[1:])
    for cond, t in condition_trials(summary).items():
        if t.get("premise_failed"):
            checks = ", ".join(f"{c} {n}x" for c, n in (t.get("failed_checks") or {}).items())
            lines.append(f"{cond}: premise failed in {t['premise_failed']} trial(s) "
                         f"({checks}); their metrics are not scored")
    paired = paired_entries(summary)
    if paired:
        prow = [("paired (same seeds)", "metric", "b - a", "95% interval", "p", "method")]
        for p in paired:
            lo, hi = p.get("ci_low"), p.get("ci_high")
            interval = f"[{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else (
                p.get("note") or "-")
            prow.append((f"{p['b']} vs {p['a']}", str(p["metric"]), _p(p.get("mean_diff")),
                         interval, _p(p.get("p_value")),
                         f"{p.get('method')} (n={p.get('n_pairs')})"))
        lines += ["", *format_table(prow[0], prow[1:])]
    return "\n".join(lines)


def run_experiment(exp: Experiment, config: dict[str, Any], out_root: Path,
                   command: list[str], progress: Progress | None = None,
                   fail_fast: bool = False, pcap: str | None = None,
                   dashboard_port: int | None = None) -> RunOutcome:
    """Run every trial of ``exp`` with a resolved ``config`` and write the bundle.

    Every progress event (trial, condition, stage, outcome) also goes to the bundle's
    ``raw/progress.jsonl`` (:mod:`dashboard.progresslog`).

    pcap: what tcpdump captures into each trial's ``raw/trial-NNN/pcap/`` (host names, switch
    ports, ``hosts``, ``trunks``, ``all``: :func:`lab.capture.parse_capture`; the OpenFlow
    channel always); None: no capture.
    dashboard_port: serve the live dashboard over the bundle on 127.0.0.1:PORT (0: any free
    port) from the bundle's creation until the run ends, failed or interrupted included;
    None: no dashboard.
    """
    progress = progress or QuietProgress()
    if dashboard_port is not None and not port_free(dashboard_port):
        raise UserError(f"--dashboard: port {dashboard_port} on 127.0.0.1 is in use "
                        "(choose another, or 0 for any free port)")
    platform.require_lab_prerequisites(need_nmap=exp.needs_nmap)
    need_netem = bool(config["link_delay_ms"] or config["link_loss_pct"])
    plat = platform.detect(config["datapath"], need_netem=need_netem)
    engine = platform.resolve_engine(config["engine"])
    plan = (load_plant_plan(config["plant"]) if config.get("plant")
            else plan_for(config["topo"], config["n_hosts"]))
    capture = parse_capture(pcap, plan) if pcap is not None else None
    conditions = exp.conditions(config) if exp.conditions else [""]
    if exp.check is not None:
        exp.check(config, plan)

    bundle = Bundle.create(out_root, exp.name)
    progress = LoggedProgress(progress, bundle.raw / PROGRESS_LOG)
    dash = _start_dashboard(bundle, dashboard_port, progress)
    try:
        return _run_trials(exp, config, out_root, bundle, command, progress, fail_fast,
                           plat, engine, plan, capture, conditions)
    finally:
        if dash is not None:
            dash.stop()
            progress.notice(f"dashboard stopped; replay it: python -m experiments.dashboard "
                            f"{bundle.path}")


def _start_dashboard(bundle: Bundle, port: int | None,
                     progress: Progress) -> DashboardProcess | None:
    """The dashboard over ``bundle`` (its log and run-state record in ``raw/``); its URL is
    printed even with ``--quiet``."""
    if port is None:
        return None
    try:
        dash = start_dashboard(bundle.path, port, bundle.raw)
    except LabError as exc:
        raise UserError(f"--dashboard: {exc}") from None
    progress.notice(f"dashboard: {dash.url} (live while the run lasts)")
    return dash


def _run_trials(exp: Experiment, config: dict[str, Any], out_root: Path, bundle: Bundle,
                command: list[str], progress: Progress, fail_fast: bool,
                plat: platform.PlatformInfo, engine: str, plan: AddressPlan,
                capture: CaptureSpec | None, conditions: list[str]) -> RunOutcome:
    """The trials, the summary, plots and report of a created bundle."""
    say = progress.message
    bundle.write_json("config.json", {"experiment": exp.name, **config})
    plan.save(bundle.path / "plan.json")
    started = dt.datetime.now(dt.timezone.utc)
    manifest = Manifest(
        experiment=exp.name, command=command, git_commit=git_commit(),
        started_utc=started.isoformat(), seed=config["seed"], platform=plat.to_dict(),
        controller={"engine": engine, "version": engine_version(engine)},
        packages=package_versions(PACKAGES), topology=plan.name,
        trials_requested=config["trials"])
    bundle.write_json("manifest.json", manifest.to_dict())
    say(f"{exp.name}: {config['trials']} trial(s) on topology {plan.name}, engine {engine}, "
        f"datapath {plat.datapath}; bundle {bundle.path}")

    by_condition = {c or NO_CONDITION: ConditionTrials.empty() for c in conditions}
    failed = 0
    interrupted = False
    manifest.conditions = conditions
    runs = []
    for t in range(1, config["trials"] + 1):
        order = condition_order(conditions, trial_seed(config["seed"], t))
        if len(order) > 1:
            manifest.condition_order = [*(manifest.condition_order or []), order]
        runs += [(t, c) for c in order]
    progress.start(len(runs))
    labs = WarmLabs(bundle.path / "raw", enabled=bool(config.get("warm_lab", True)))
    try:
        for index, (trial, cond) in enumerate(runs, start=1):
            raw_dir = bundle.trial_raw(trial)
            if cond:
                raw_dir = raw_dir / cond
                raw_dir.mkdir(exist_ok=True)
            # Every condition of a trial gets the same seed: a paired comparison.
            ctx = TrialContext(exp=exp, config=config, trial=trial,
                               seed=trial_seed(config["seed"], trial),
                               raw_dir=raw_dir, plan=plan, engine=engine,
                               datapath=plat.datapath, progress=progress,
                               capture=capture, condition=cond, labs=labs)
            label = f"trial {trial}" + (f" [{cond}]" if cond else "")
            t0 = time.monotonic()
            progress.trial_started(index, label, trial, cond,
                                   str(raw_dir.relative_to(bundle.path)))
            record = TrialRecord(trial=trial, seed=ctx.seed, condition=cond)
            keys = {"trial": trial, **({"condition": cond} if cond else {})}
            mon = fidelity.FidelityMonitor()
            try:
                with mon:
                    result: TrialResult = exp.trial(ctx)
            except (LabError, OSError, ValueError, RuntimeError, KeyError) as exc:
                failed += 1
                by_condition[cond or NO_CONDITION].failed += 1
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
                record.duration_s = time.monotonic() - t0
                record.fidelity = mon.summary().to_dict()
                mon.write_csv(ctx.raw_dir / "fidelity.csv")
                (ctx.raw_dir / "error.txt").write_text(traceback.format_exc())
                manifest.trials.append(record)
                bundle.write_json("manifest.json", manifest.to_dict())
                progress.trial_done(index, f"FAILED: {record.error}", "failed")
                if fail_fast:
                    break
                continue
            duration = time.monotonic() - t0
            for table, rows in result.tables.items():
                bundle.append_rows(table, ({**keys, **r} for r in rows))
            valid = all(result.validity.values())
            bundle.append_rows("metrics", (
                {**keys, "metric": k, "value": v, "valid": valid}
                for k, v in result.metrics.items()))
            for check, ok in result.validity.items():
                name = f"{cond}:{check}" if cond else check
                manifest.record_validity(name, ok)
            if valid:
                by_condition[cond or NO_CONDITION].add_scored(trial, result.metrics)
            else:
                by_condition[cond or NO_CONDITION].add_premise_failed(
                    [k for k, ok in result.validity.items() if not ok])
            record.status = "ok" if valid else "invalid"
            record.duration_s, record.timeline = duration, result.timeline
            record.fidelity = mon.summary().to_dict()
            if not valid:
                record.invalid_checks = [k for k, ok in result.validity.items() if not ok]
            mon.write_csv(ctx.raw_dir / "fidelity.csv")
            manifest.trials.append(record)
            bundle.write_json("manifest.json", manifest.to_dict())
            saturated = " (host CPU saturated)" if record.fidelity["saturated"] else ""
            progress.trial_done(index, f"{record.status} in {duration:.1f} s{saturated}",
                                record.status)
    except (KeyboardInterrupt, Interrupted):
        interrupted = True
        labs.close()
        progress.finish()
        say("interrupted: the network was torn down; completed trials are in the bundle")
    else:
        progress.finish()
    finally:
        labs.close()
    if labs.reused:
        say(f"warm lab: {labs.reused} of {len(runs)} run(s) reused the network and controller "
            f"of the run before (--no-warm-lab: a fresh one each)")

    summary = build_summary(exp.name, by_condition,
                            [t.error or "" for t in manifest.trials if t.status == "failed"],
                            config.get("proportion_ci", "wilson"))
    bundle.write_json("summary.json", summary)
    plots: list[tuple[str, str]] = []
    if any(c.scored for c in by_condition.values()) and not interrupted:
        try:
            plots = exp.plot(bundle.path)
        except Exception as exc:  # a plot bug must not lose the measured data
            log.exception("plotting failed")
            say(f"plotting failed: {exc}")
    manifest.finish(dt.datetime.now(dt.timezone.utc).isoformat(), interrupted, plots,
                    fidelity.run_summary(manifest.trial_dicts()))
    bundle.write_json("manifest.json", manifest.to_dict())
    try:
        write_report(bundle.path)
    except Exception as exc:  # a report bug must not lose the measured data
        log.exception("writing report.html failed")
        say(f"report failed: {exc}")
    bundle.link_latest(out_root)
    return RunOutcome(bundle.path, summary, failed, summary["trials_completed"], interrupted)
