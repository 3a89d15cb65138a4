"""Running an experiment: trials, progress, statistics, the bundle.

The CLI (``experiments.run``) parses and validates; this module does the work. A failed trial
is recorded with its error and the run goes on; an interrupt stops after teardown with
everything completed already on disk.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import Interrupted, LabError, UserError
from common.plan import AddressPlan, plan_for
from experiments.progress import Progress, QuietProgress
from experiments.spec import Experiment, TrialResult
from lab import fidelity, platform
from lab.lifecycle import LabConfig
from reporting.bundle import Bundle, git_commit, package_versions
from reporting.manifest import Manifest, TrialRecord
from reporting.report import write_report
from reporting.stats import summarize

log = logging.getLogger(__name__)

PACKAGES = ("ryu", "os-ken", "eventlet", "pymodbus", "python-nmap", "scapy", "matplotlib",
            "mininet")




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
    with ``seed``.
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
    pcap_hosts: tuple[str, ...] = ()
    condition: str = ""
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def stage(self, text: str) -> None:
        """Tell the user what the trial is doing now (progress bar or a line)."""
        self.progress.stage(text)

    def lab_config(self, **overrides: Any) -> LabConfig:
        opts: dict[str, Any] = {
            "plan": self.plan,
            "log_dir": self.raw_dir,
            "engine": self.engine,
            "datapath": self.datapath,
            "link_delay_ms": self.config["link_delay_ms"],
            "link_loss_pct": self.config["link_loss_pct"],
            "connect_timeout_s": self.config["connect_timeout_s"],
            "pcap_hosts": self.pcap_hosts,
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


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}"


def summary_table(summary: dict[str, Any]) -> str:
    """The end-of-run table: metric, mean, 95% CI, n."""
    rows = [("metric", "mean", "95% CI ±", "n")]
    for name, s in summary["metrics"].items():
        rows.append((name, _fmt(s["mean"]), _fmt(s["ci95"]), str(s["n"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_experiment(exp: Experiment, config: dict[str, Any], out_root: Path,
                   command: list[str], progress: Progress | None = None,
                   fail_fast: bool = False, pcap: str = "") -> RunOutcome:
    """Run every trial of ``exp`` with a resolved ``config`` and write the bundle.

    pcap: comma-separated host names (or ``all``) whose interface is captured with tcpdump
    into each trial's ``raw/trial-NNN/pcap/``.
    """
    progress = progress or QuietProgress()
    say = progress.message
    platform.require_lab_prerequisites(need_nmap=exp.needs_nmap)
    need_netem = bool(config["link_delay_ms"] or config["link_loss_pct"])
    plat = platform.detect(config["datapath"], need_netem=need_netem)
    engine = platform.resolve_engine(config["engine"])
    plan = plan_for(config["topo"], config["n_hosts"])
    pcap_hosts = parse_pcap_hosts(pcap, plan)
    conditions = exp.conditions(config) if exp.conditions else [""]
    if exp.check is not None:
        exp.check(config, plan)

    bundle = Bundle.create(out_root, exp.name)
    bundle.write_json("config.json", {"experiment": exp.name, **config})
    plan.save(bundle.path / "plan.json")
    started = dt.datetime.now(dt.UTC)
    manifest = Manifest(
        experiment=exp.name, command=command, git_commit=git_commit(),
        started_utc=started.isoformat(), seed=config["seed"], platform=plat.to_dict(),
        controller={"engine": engine, "version": engine_version(engine)},
        packages=package_versions(PACKAGES), topology=plan.name,
        trials_requested=config["trials"])
    bundle.write_json("manifest.json", manifest.to_dict())
    say(f"{exp.name}: {config['trials']} trial(s) on topology {plan.name}, engine {engine}, "
        f"datapath {plat.datapath}; bundle {bundle.path}")

    per_trial: dict[str, list[float]] = {}
    invalid_trials = 0
    failed = 0
    interrupted = False
    manifest.conditions = conditions
    runs = [(t, c) for t in range(1, config["trials"] + 1) for c in conditions]
    progress.start(len(runs))
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
                               pcap_hosts=pcap_hosts, condition=cond)
            label = f"trial {trial}" + (f" [{cond}]" if cond else "")
            t0 = time.monotonic()
            progress.trial_started(index, label)
            record = TrialRecord(trial=trial, seed=ctx.seed, condition=cond)
            keys = {"trial": trial, **({"condition": cond} if cond else {})}
            mon = fidelity.FidelityMonitor()
            try:
                with mon:
                    result: TrialResult = exp.trial(ctx)
            except (LabError, OSError, ValueError, RuntimeError, KeyError) as exc:
                failed += 1
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
                record.duration_s = time.monotonic() - t0
                record.fidelity = mon.summary().to_dict()
                mon.write_csv(ctx.raw_dir / "fidelity.csv")
                (ctx.raw_dir / "error.txt").write_text(traceback.format_exc())
                manifest.trials.append(record)
                bundle.write_json("manifest.json", manifest.to_dict())
                progress.trial_done(index, f"FAILED: {record.error}")
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
                for k, v in result.metrics.items():
                    per_trial.setdefault(f"{cond}:{k}" if cond else k, []).append(v)
            else:
                invalid_trials += 1
            record.status = "ok" if valid else "invalid"
            record.duration_s, record.timeline = duration, result.timeline
            record.fidelity = mon.summary().to_dict()
            if not valid:
                record.invalid_checks = [k for k, ok in result.validity.items() if not ok]
            mon.write_csv(ctx.raw_dir / "fidelity.csv")
            manifest.trials.append(record)
            bundle.write_json("manifest.json", manifest.to_dict())
            saturated = " (host CPU saturated)" if record.fidelity["saturated"] else ""
            progress.trial_done(index, f"{record.status} in {duration:.1f} s{saturated}")
    except (KeyboardInterrupt, Interrupted):
        interrupted = True
        progress.finish()
        say("interrupted: the network was torn down; completed trials are in the bundle")
    else:
        progress.finish()

    summary = {
        "experiment": exp.name,
        "trials_completed": len(manifest.trials) - failed,
        "trials_failed": failed,
        "trials_invalid": invalid_trials,
        "failures": [t.error for t in manifest.trials if t.status == "failed"],
        "metrics": {k: summarize(v).to_dict() for k, v in per_trial.items()},
    }
    bundle.write_json("summary.json", summary)
    plots: list[tuple[str, str]] = []
    if per_trial and not interrupted:
        try:
            plots = exp.plot(bundle.path)
        except Exception as exc:  # a plot bug must not lose the measured data
            log.exception("plotting failed")
            say(f"plotting failed: {exc}")
    manifest.finish(dt.datetime.now(dt.UTC).isoformat(), interrupted, plots,
                    fidelity.run_summary(manifest.trial_dicts()))
    bundle.write_json("manifest.json", manifest.to_dict())
    try:
        write_report(bundle.path)
    except Exception as exc:  # a report bug must not lose the measured data
        log.exception("writing report.html failed")
        say(f"report failed: {exc}")
    bundle.link_latest(out_root)
    return RunOutcome(bundle.path, summary, failed, summary["trials_completed"], interrupted)


def parse_pcap_hosts(text: str, plan: AddressPlan) -> tuple[str, ...]:
    """``--pcap`` value → host names; ``all`` is every host of the plan."""
    if not text:
        return ()
    if text == "all":
        return tuple(h.name for h in plan.hosts)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    known = {h.name for h in plan.hosts}
    for n in names:
        if n not in known:
            raise UserError(f"--pcap: no host {n!r} in topology {plan.name} "
                            f"(hosts: {', '.join(sorted(known))}, or 'all')")
    return names
