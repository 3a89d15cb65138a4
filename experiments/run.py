"""``python -m experiments.run``: one CLI for every experiment.

    python -m experiments.run list
    python -m experiments.run recon [--trials N] [--seed S] [--config FILE] [--quick] ...
    python -m experiments.run all --quick
    python -m experiments.run plant-check FILE

Precedence: built-in defaults ← ``--quick`` ← ``--config`` file ← flags. Bad input is one line
on stderr and exit 2; a missing prerequisite is one line saying what to run, exit 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from common.cli import OneLineParser, int_in
from common.errors import EXIT_INTERRUPTED, Interrupted, UserError
from experiments import plant_check
from experiments.registry import EXPERIMENTS, get_experiment
from experiments.spec import Experiment, Param, load_config_file, resolve_config
from lab.dashboard import DEFAULT_PORT as DASHBOARD_PORT

log = logging.getLogger(__name__)


def _add_runner_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML, TOML or JSON file of parameters")
    p.add_argument("--out", metavar="DIR", default="results",
                   help="results root (default: ./results)")
    p.add_argument("--quick", action="store_true", help="short version (smoke test, class)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failed trial")
    p.add_argument("--pcap", metavar="WHAT", nargs="?", const="all", default=None,
                   help="capture full frames with tcpdump into each trial's raw/.../pcap/: "
                        "comma-separated host names, switch ports (s1-eth1), 'hosts', "
                        "'trunks' or 'all' (the default when WHAT is left out); the OpenFlow "
                        "channel is always captured (docs/captures.md)")
    p.add_argument("--dashboard", metavar="PORT", type=int_in(0, 65535), nargs="?",
                   const=DASHBOARD_PORT, default=None,
                   help="serve the live dashboard of the run on http://127.0.0.1:PORT/ "
                        f"(default {DASHBOARD_PORT}; 0: any free port) until the run ends "
                        "(docs/dashboard.md)")


def add_param_option(p: argparse.ArgumentParser, prm: Param) -> None:
    """One experiment parameter as a flag: ``--x/--no-x`` for a boolean, ``{a,b}`` for a
    choice, ``N`` (integer) or ``X`` (number) with its range and default otherwise.

    Every flag defaults to None (not given), so a config file's value is not overridden.
    """
    if prm.kind == "bool":
        p.add_argument(prm.flag, dest=prm.name, action=argparse.BooleanOptionalAction,
                       default=None, help=f"{prm.help} [default {prm.default_text()}]")
        return
    if prm.choices:
        metavar = "{" + ",".join(prm.choices) + "}"
        detail = f"default {prm.default_text()}"
    else:
        metavar = {"int": "N", "float": "X"}.get(prm.kind, "TEXT")
        detail = ("" if prm.kind == "str" else f"{prm.allowed()}; ") + \
            f"default {prm.default_text()}"
    p.add_argument(prm.flag, dest=prm.name, metavar=metavar, help=f"{prm.help} [{detail}]")


def experiment_parser(exp: Experiment) -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"python -m experiments.run {exp.name}", description=exp.description)
    _add_runner_options(p)
    for prm in exp.all_params:
        add_param_option(p, prm)
    return p


def top_parser() -> argparse.ArgumentParser:
    names = "\n".join(f"  {e.name:<10} {e.description}" for e in EXPERIMENTS.values())
    p = OneLineParser(prog="python -m experiments.run",
                description="Run an SDN-ICS Lab experiment and write a results bundle.",
                epilog=f"experiments:\n{names}\n  all        every experiment in turn\n"
                       "  plant-check FILE  validate a plant file and print it\n\n"
                       "'python -m experiments.run NAME --help' lists NAME's options.",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="an experiment name, 'list' or 'all'")
    return p


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _run_one(exp: Experiment, args: argparse.Namespace, argv: list[str]) -> int:
    from experiments.progress import make_progress
    from experiments.runner import run_experiment, summary_table
    from lab.lock import RunLock

    file_values = load_config_file(Path(args.config)) if args.config else None
    flags = {p.name: getattr(args, p.name) for p in exp.all_params}
    config = resolve_config(exp, file_values, flags, quick=args.quick,
                            file_name=args.config or "config file")
    out = Path(args.out)

    with RunLock(f"experiments.run {exp.name}"):
        outcome = run_experiment(exp, config, out, ["python", "-m", "experiments.run", *argv],
                                 progress=make_progress(args.quiet), fail_fast=args.fail_fast,
                                 pcap=args.pcap, dashboard_port=args.dashboard)
    if args.json:
        print(json.dumps({"bundle": str(outcome.bundle), **outcome.summary}, default=str))
    else:
        print(summary_table(outcome.summary))
        if outcome.failed:
            print(f"{outcome.failed} trial(s) failed: "
                  f"{'; '.join(sorted(set(outcome.summary['failures'])))}")
        print(f"bundle: {outcome.bundle}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return 1 if outcome.completed == 0 else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not argv or argv[0] in ("-h", "--help"):
            top_parser().print_help()
            return 0 if argv else 2
        name, rest = argv[0], argv[1:]
        if name == "plant-check":
            return plant_check.main(rest)
        if name == "list":
            if rest:
                raise UserError("'list' takes no arguments")
            for exp in EXPERIMENTS.values():
                print(f"{exp.name:<10} {exp.description}")
            return 0
        signal.signal(signal.SIGTERM, _raise_interrupted)
        if name == "all":
            # Validate everything before running anything.
            parsed = [(exp, experiment_parser(exp).parse_args(rest))
                      for exp in EXPERIMENTS.values()]
            worst = 0
            for exp, args in parsed:
                code = _run_one(exp, args, [exp.name, *rest])
                worst = max(worst, code)
                if code == EXIT_INTERRUPTED:
                    break
            return worst
        exp = get_experiment(name)
        args = experiment_parser(exp).parse_args(rest)
        return _run_one(exp, args, argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
