"""Lab mode: the emulated ICS at Mininet's ``mininet>`` prompt, for classrooms (the session).

    sudo .venv/bin/python -m topologies.ics --cli [--defense none|rhm|nat] [--detector]
        [--topo ics|classic | --plant FILE] [--engine auto|ryu|os-ken]
        [--datapath auto|user|kernel]
        [--hop-interval-s 5] [--seed 1] [--flow-idle-s 10] [--attack-timeout-s 120]
        [--out results] [--pcap [WHAT]]
    sudo .venv/bin/python -m topologies.ics --script FILE      # the same, driven by a file
    sudo .venv/bin/python -m topologies.classic --cli          # h1-h4 on s1, a PLC on h4

The network is built by :func:`lab.lifecycle.running_lab` (so teardown and crash clean-up
are the project's: never ``mn -c``), the PLCs, the HMI and the defense (:mod:`lab.defenses`)
run as in an experiment, and every log goes into a run folder ``<out>/lab/<UTC timestamp>/``.
Leaving the prompt (``exit``, Ctrl-D), Ctrl-C at an idle prompt, SIGTERM and SIGHUP all tear
down exactly what was built. Ctrl-C while a command runs stops only that command, as in
Mininet. The options are parsed by :mod:`lab.options`; the prompt is :mod:`lab.commands`.

Besides Mininet's own commands, the prompt knows ``mtd``, ``plc``, ``hmi``, ``attack``,
``detector``, ``pcap``, ``sleep`` and ``lab`` (``help NAME`` describes each). Host names are
the roles of the address plan (``hmi``, ``plc1``, ``attacker``), and a plan switch name
(``s1``) means this lab's switch even when ``SDNICS_SWITCH_PREFIX`` renames the bridges.

``--script FILE`` runs the file's commands (one a line; ``#`` comments; a leading
``mininet> `` is allowed) and echoes each as ``mininet> COMMAND`` before its output, so the
transcript reads like a session; the lab is then torn down.

What it cannot do: run two labs with the same switch names on one machine (set
``SDNICS_SWITCH_PREFIX``), or give a host a route out of the emulated network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import IO

from mininet.log import lg, setLogLevel

from common.errors import EXIT_INTERRUPTED, Interrupted, LabError, UserError
from common.plan import plan_for
from lab import defenses, platform
from lab import views as labviews
from lab.capture import parse_capture
from lab.commands import LabCli, session_banner
from lab.dashboard import start_dashboard
from lab.devices import load_plant_plan, start_ics, stop_hmi
from lab.lifecycle import LabConfig, running_lab
from lab.lock import RunLock
from lab.options import LabModeOptions, RunFiles, missing_part, new_run_dir, parse_options
from lab.platform import resolve_engine

log = logging.getLogger(__name__)


@contextlib.contextmanager
def mininet_output_on_stdout() -> Iterator[None]:
    """Mininet's command output (its ``output`` level) on stdout while the prompt runs."""
    handler = lg.ch
    old_stream = handler.stream
    old_level = lg.level
    old_propagate = lg.propagate
    handler.setStream(sys.stdout)
    setLogLevel("output")
    lg.propagate = False  # the root logger's handler would print every line twice
    try:
        yield
    finally:
        sys.stdout.flush()
        lg.propagate = old_propagate
        lg.setLevel(old_level)
        handler.setLevel(old_level)
        handler.setStream(old_stream)


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def run_session(opts: LabModeOptions) -> int:
    """Build the lab, run the prompt (or the script), tear down; returns the exit status."""
    platform.require_lab_prerequisites(need_nmap=False)
    datapath = platform.choose_datapath(opts.datapath)
    engine = resolve_engine(opts.engine)
    plan = load_plant_plan(opts.plant) if opts.plant else plan_for(opts.topo)
    handled = [signal.SIGTERM, signal.SIGHUP] + ([signal.SIGINT] if opts.script else [])
    previous = {s: signal.signal(s, _raise_interrupted) for s in handled}
    try:
        with RunLock(f"lab mode ({opts.topo})"):
            files = RunFiles.under(new_run_dir(opts.out_root))
            plan.save(files.plan_path)
            settings = opts.defense_settings()
            app, controller_args, hop_logs = defenses.controller_setup(
                settings, files.plan_path, files.run_dir)
            cfg = LabConfig(plan=plan, log_dir=files.run_dir, engine=engine,
                            datapath=datapath, app=app, controller_args=controller_args,
                            capture=parse_capture(opts.pcap, plan) if opts.pcap else None)
            print(f"lab: starting the {plan.name} network (controller {app} on {engine})...",
                  flush=True)
            with running_lab(cfg) as lab:
                ics = start_ics(lab, files.run_dir)
                running = defenses.start_defense(lab, settings, files.plan_path,
                                                 files.run_dir, hop_logs)
                lab.check_healthy()
                dash = None
                if opts.dashboard_port is not None:
                    dash = start_dashboard(files.run_dir, opts.dashboard_port, files.run_dir)
                print("\n".join(session_banner(opts, lab, files)), flush=True)
                try:
                    if dash is not None:
                        print(f"lab: dashboard {dash.url}", flush=True)
                    with mininet_output_on_stdout(), _cli_stdin(opts) as stdin:
                        LabCli(lab, ics, opts, files, running, stdin=stdin,
                               script=str(opts.script) if opts.script else None)
                finally:
                    if dash is not None:
                        dash.stop()
                metrics = stop_hmi(lab, ics)
                if metrics:
                    print("lab: the HMI over the whole session", flush=True)
                    print("\n".join(labviews.format_hmi(metrics, None)[1:]), flush=True)
                print("lab: tearing down", flush=True)
            print(f"lab: torn down; logs in {files.run_dir}", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


@contextlib.contextmanager
def _cli_stdin(opts: LabModeOptions) -> Iterator[IO[str]]:
    """The terminal for the prompt; for a script, a pipe that never has input.

    Mininet forwards keystrokes from its stdin to a running host command: a script run must
    not feed the caller's stdin (or an endless EOF) into ``ping``.
    """
    if opts.script is None:
        yield sys.stdin
        return
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd) as reader:
        try:
            yield reader
        finally:
            os.close(write_fd)


def main(argv: Sequence[str] | None = None, prog: str = "python -m topologies.ics",
         default_topo: str = "ics") -> int:
    """Parse, check, run a session; one line on stderr for anything the user can fix.

    Exit status: 0 done, 1 the lab failed, 2 bad arguments or a missing part, 3 the machine
    lacks something (root, Open vSwitch), 130 interrupted (Ctrl-C, SIGTERM, SIGHUP).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        opts = parse_options(argv, prog, default_topo)
        problem = missing_part(opts)
        if problem:
            raise UserError(problem)
        return run_session(opts)
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        sys.stderr.write("interrupted: the lab was torn down\n")
        return EXIT_INTERRUPTED
    except (LabError, subprocess.SubprocessError, OSError) as exc:
        sys.stderr.write(f"{prog}: the lab failed: {exc}\n")
        return 1
