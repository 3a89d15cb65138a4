"""Lab mode: the emulated ICS at Mininet's ``mininet>`` prompt, for classrooms.

    sudo .venv/bin/python -m topologies.ics --cli [--defense none|rhm|nat] [--detector]
        [--topo ics|classic] [--engine auto|ryu|os-ken] [--datapath auto|user|kernel]
        [--hop-interval-s 5] [--seed 1] [--attack-timeout-s 120] [--out results]
    sudo .venv/bin/python -m topologies.ics --script FILE      # the same, driven by a file
    sudo .venv/bin/python -m topologies.classic --cli          # h1-h4 on s1, a PLC on h4

The network is built by :func:`lab.lifecycle.running_lab` (so teardown and crash clean-up
are the project's: never ``mn -c``), the PLCs and the HMI run as in an experiment, and every
log goes into a run folder ``<out>/lab/<UTC timestamp>/``. Leaving the prompt (``exit``,
Ctrl-D), Ctrl-C at an idle prompt, SIGTERM and SIGHUP all tear down exactly what was built.
Ctrl-C while a command runs stops only that command, as in Mininet.

Besides Mininet's own commands, the prompt knows ``mtd``, ``plc``, ``hmi``, ``attack``,
``detector``, ``sleep`` and ``lab`` (``help NAME`` describes each). Host names are the roles of
the address plan (``hmi``, ``plc1``, ``attacker``), and a plan switch name (``s1``) means this
lab's switch even when ``SDNICS_SWITCH_PREFIX`` renames the bridges.

``--script FILE`` runs the file's commands (one a line; ``#`` comments; a leading
``mininet> `` is allowed) and echoes each as ``mininet> COMMAND`` before its output, so the
transcript reads like a session; the lab is then torn down.

What it cannot do: run two labs with the same switch names on one machine (set
``SDNICS_SWITCH_PREFIX``), or give a host a route out of the emulated network.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn

from mininet.cli import CLI
from mininet.log import lg, output

from common.errors import EXIT_INTERRUPTED, Interrupted, LabError, UserError
from common.plan import AddressPlan, plan_for
from lab import views as labviews
from lab.devices import Ics, start_ics, stop_hmi
from lab.lifecycle import Lab
from plc.metrics import records_from_csv, summarize

log = logging.getLogger(__name__)

TOPOS = ("ics", "classic")
DEFENSES = ("none", "rhm", "nat")
ENGINES = ("auto", "ryu", "os-ken")
DATAPATHS = ("auto", "user", "kernel")
# Attack modules the ``attack`` command runs, and what --targets means when not given:
# "subnet" the plan's subnet, "plc" the first PLC, "plcs" every PLC, "hmi+plc" the HMI and
# the first PLC (the two victims of a man in the middle).
ATTACK_TARGETS = {"recon": "subnet", "inject": "plc", "synflood": "plc", "mitm": "hmi+plc",
                  "iphop": "plcs", "ctrl_fuzz": "subnet", "modbus_fuzz": "plc"}
MAX_SLEEP_S = 600.0
MAX_ATTACK_TIMEOUT_S = 3600.0
# A Ctrl-C at the prompt this soon after a command ended belongs to that command (a second
# press while stopping a ping), not a request to leave the lab.
CTRL_C_GRACE_S = 1.0
CSV_TAIL_BYTES = 64 * 1024
ATTACK_STOP_GRACE_S = 10.0


# --- options ----------------------------------------------------------------------------
class LabArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UserError (one line, exit 2), not usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def _positive_float(limit: float):  # -> Callable[[str], float]
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value <= limit:
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {limit:g}, got {text!r}")
        return value
    return parse


@dataclass(frozen=True)
class LabModeOptions:
    """What one lab-mode session runs.

    script: command file (None: interactive prompt).
    out_root: results root; the run folder is ``out_root/lab/<UTC timestamp>``.
    hop_interval_s, seed: the moving-target defense's schedule (rhm and nat).
    attack_timeout_s: bound of one ``attack`` command.
    """

    topo: str = "ics"
    defense: str = "none"
    detector: bool = False
    engine: str = "auto"
    datapath: str = "auto"
    script: Path | None = None
    out_root: Path = Path("results")
    hop_interval_s: float = 5.0
    seed: int = 1
    attack_timeout_s: float = 120.0


def build_parser(prog: str, default_topo: str = "ics") -> LabArgumentParser:
    """The lab-mode command line (see the module docstring)."""
    parser = LabArgumentParser(
        prog=prog, description="The emulated ICS at the mininet> prompt (lab mode).",
        epilog="Run as root. Leaving the prompt tears the whole lab down.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cli", action="store_true", help="open the interactive mininet> prompt")
    mode.add_argument("--script", type=Path, default=None, metavar="FILE",
                      help="run the commands of FILE (one a line), then tear down")
    parser.add_argument("--topo", choices=TOPOS, default=default_topo)
    parser.add_argument("--defense", choices=DEFENSES, default="none",
                        help="rhm: address hopping in the controller; nat: iptables NAT "
                             "hopping in each PLC host")
    parser.add_argument("--detector", action="store_true",
                        help="run the controller's scan detector")
    parser.add_argument("--engine", choices=ENGINES, default="auto")
    parser.add_argument("--datapath", choices=DATAPATHS, default="auto")
    parser.add_argument("--hop-interval-s", type=_positive_float(3600.0), default=5.0,
                        help="seconds between two address hops (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the hop schedule")
    parser.add_argument("--attack-timeout-s", type=_positive_float(MAX_ATTACK_TIMEOUT_S),
                        default=120.0, help="bound of one attack command (default 120)")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results root; the run folder is OUT/lab/<timestamp>")
    return parser


def parse_options(argv: Sequence[str] | None, prog: str,
                  default_topo: str = "ics") -> LabModeOptions:
    """Parse and check the command line; UserError (one line) on anything wrong."""
    args = build_parser(prog, default_topo).parse_args(argv)
    if not args.cli and args.script is None:
        raise UserError("nothing to do: give --cli (the mininet> prompt) or --script FILE")
    if args.script is not None and not args.script.is_file():
        raise UserError(f"--script {args.script}: no such file")
    return LabModeOptions(topo=args.topo, defense=args.defense, detector=args.detector,
                          engine=args.engine, datapath=args.datapath, script=args.script,
                          out_root=args.out, hop_interval_s=args.hop_interval_s,
                          seed=args.seed, attack_timeout_s=args.attack_timeout_s)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def missing_part(opts: LabModeOptions) -> str | None:
    """One line naming the part of the project an option needs and this checkout lacks."""
    needs = []
    if opts.defense == "rhm":
        needs.append(("--defense rhm", "controllers.rhm", "the controller app rhm"))
    if opts.defense == "nat":
        needs.append(("--defense nat", "defenses.nat_hop", "the host defense defenses.nat_hop"))
    if opts.detector:
        needs.append(("--detector", "controllers.detector", "the controller app detector"))
    for option, module, what in needs:
        if not _module_exists(module):
            return f"{option} needs {what} ({module}), which this checkout does not have yet"
    return None


@dataclass(frozen=True)
class RunFiles:
    """Where a session writes: the run folder and the files the commands read."""

    run_dir: Path
    plan_path: Path
    hop_log: Path
    detect_log: Path
    attacks_dir: Path

    @classmethod
    def under(cls, run_dir: Path) -> RunFiles:
        return cls(run_dir=run_dir, plan_path=run_dir / "plan.json",
                   hop_log=run_dir / "hops.jsonl", detect_log=run_dir / "detections.jsonl",
                   attacks_dir=run_dir / "attacks")

    def nat_hop_log(self, host: str) -> Path:
        return self.run_dir / f"nat_hops-{host}.jsonl"


def controller_setup(opts: LabModeOptions, files: RunFiles) -> tuple[str, tuple[str, ...]]:
    """The controller app and its arguments for a session's defense and detector."""
    detect = ("--detect-log", str(files.detect_log))
    if opts.defense == "rhm":
        args = ("--plan", str(files.plan_path), "--hop-log", str(files.hop_log),
                "--hop-interval-s", f"{opts.hop_interval_s:g}", "--seed", str(opts.seed))
        return "rhm", args + (("--detector", *detect) if opts.detector else ())
    if opts.detector:
        return "detector", detect
    return "l2", ()


def nat_hop_args(opts: LabModeOptions, files: RunFiles, host: str,
                 start_epoch_s: float) -> list[str]:
    """Arguments of ``python -m defenses.nat_hop`` in one protected host.

    start_epoch_s: the schedule's time zero (Unix seconds), the same for every host so that
    the hosts follow one schedule and never hold the same address.
    """
    return ["--plan", str(files.plan_path), "--host", host, "--log", str(files.nat_hop_log(host)),
            "--hop-interval-s", f"{opts.hop_interval_s:g}", "--seed", str(opts.seed),
            "--start-epoch-s", f"{start_epoch_s:.6f}",
            "--out", str(files.run_dir / f"nat_hop-{host}.json")]


def new_run_dir(out_root: Path, now: dt.datetime | None = None) -> Path:
    """``out_root/lab/<UTC timestamp>`` (``-2``, ``-3``... when taken), created."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = out_root / "lab"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 100):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UserError(f"cannot create a run folder under {base}")


# --- pure helpers of the commands -------------------------------------------------------
class CommandError(ValueError):
    """A lab command was used wrongly; ``str()`` is the one line shown at the prompt."""


def alias_switches(line: str, aliases: dict[str, str]) -> str:
    """Replace whole-word plan switch names (``s1``) by this lab's names (``hfs1``)."""
    if not aliases:
        return line
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, aliases)) + r")(?![\w.-])")
    return pattern.sub(lambda m: aliases[m.group(1)], line)


def default_targets(kind: str, plan: AddressPlan) -> str:
    """The --targets value an attack gets when the user gives none (see ATTACK_TARGETS)."""
    plcs = plan.hosts_with_role("plc")
    hmis = plan.hosts_with_role("hmi")
    if kind == "subnet":
        return plan.subnet
    if not plcs:
        raise CommandError("this topology has no PLC: give --targets")
    if kind == "plc":
        return plcs[0].ip
    if kind == "plcs":
        return ",".join(h.ip for h in plcs)
    if not hmis:
        raise CommandError("this topology has no HMI: give --targets")
    return f"{hmis[0].ip},{plcs[0].ip}"


def _substitute_hosts(value: str, plan: AddressPlan) -> str:
    names = {h.name: h.ip for h in plan.hosts}
    return ",".join(names.get(item.strip(), item.strip()) for item in value.split(","))


def attack_argv(name: str, user_args: Sequence[str], plan: AddressPlan, plan_path: Path,
                out_path: Path) -> list[str]:
    """``-m attacks.NAME`` arguments with --plan, --out and (when missing) --targets filled in.

    Host names in --targets (``plc1``) become their addresses, as Mininet does for commands.
    CommandError when the name is unknown or the user set --plan/--out.
    """
    if name not in ATTACK_TARGETS:
        raise CommandError(f"unknown attack {name!r} (choose from {', '.join(ATTACK_TARGETS)})")
    args = list(user_args)
    for own in ("--plan", "--out"):
        if any(a == own or a.startswith(own + "=") for a in args):
            raise CommandError(f"attack fills {own} itself; leave it out")
    has_targets = False
    for i, arg in enumerate(args):
        if arg == "--targets" and i + 1 < len(args):
            args[i + 1] = _substitute_hosts(args[i + 1], plan)
            has_targets = True
        elif arg.startswith("--targets="):
            args[i] = "--targets=" + _substitute_hosts(arg.split("=", 1)[1], plan)
            has_targets = True
    if not has_targets:
        args = ["--targets", default_targets(ATTACK_TARGETS[name], plan), *args]
    return ["-m", f"attacks.{name}", "--plan", str(plan_path), "--out", str(out_path), *args]


def read_tail(path: Path, max_bytes: int = CSV_TAIL_BYTES) -> tuple[str, list[str]]:
    """(first line, last lines) of a growing text file, reading at most ``max_bytes`` of its end.

    The first tail line is dropped when the tail starts mid-line.
    """
    with open(path, "rb") as f:
        header = f.readline()
        size = f.seek(0, os.SEEK_END)
        start = max(len(header), size - max_bytes)
        f.seek(start)
        chunk = f.read()
    lines = chunk.decode(errors="replace").splitlines()
    if start > len(header) and lines:
        lines = lines[1:]
    header_text = header.decode(errors="replace").rstrip("\r\n")
    return header_text, lines


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return labviews.parse_jsonl(f)
    except OSError:
        return []


# --- the prompt -------------------------------------------------------------------------
class LabCli(CLI):
    """Mininet's CLI with the lab's commands; a session ends when this returns."""

    prompt = "mininet> "
    helpStr = CLI.helpStr + (  # noqa: N815 - the name Mininet reads
        "Lab mode: mtd, plc, hmi, attack, detector, sleep and lab read the running ICS;\n"
        "help <command> says more. exit or Ctrl-D leaves the lab and tears it down.\n\n")

    def __init__(self, lab: Lab, ics: Ics, opts: LabModeOptions, files: RunFiles,
                 stdin: IO[str] = sys.stdin, script: str | None = None) -> None:
        self.lab = lab
        self.ics = ics
        self.opts = opts
        self.files = files
        self.plan = lab.plan
        prefix = lab.cfg.switch_prefix
        self.aliases = {s.name: f"{prefix}{s.name}" for s in self.plan.switches} if prefix else {}
        self.hmi_started_s = time.monotonic()
        self.attack_count = 0
        self._in_command = False
        self._last_command_end_s = 0.0
        super().__init__(lab.net, stdin=stdin, script=script)

    # --- plumbing ----------------------------------------------------------------------
    def say(self, lines: Sequence[str]) -> None:
        """Print lines at the prompt (through Mininet's output, like its own commands)."""
        output("".join(f"{line}\n" for line in lines))

    def precmd(self, line: str) -> str:
        self._in_command = True
        return alias_switches(super().precmd(line), self.aliases)

    def postcmd(self, stop: bool, line: str) -> bool:
        self._in_command = False
        self._last_command_end_s = time.monotonic()
        sys.stdout.flush()
        return stop

    def run(self) -> None:
        """Mininet's loop, except that Ctrl-C at an idle prompt leaves the lab."""
        while True:
            try:
                for node in self.mn.values():
                    while node.waiting:
                        node.sendInt()
                        node.waitOutput()
                self.cmdloop()
                return
            except KeyboardInterrupt:
                recent = time.monotonic() - self._last_command_end_s < CTRL_C_GRACE_S
                if self._in_command or recent:
                    self._in_command = False
                    self._last_command_end_s = time.monotonic()
                    output("\nInterrupt\n")
                    continue
                output("\nCtrl-C: leaving the lab\n")
                return

    def do_source(self, line: str) -> None:
        """Run the commands of a file, echoing each one.
           Usage: source <file>"""
        args = shlex.split(line)
        if len(args) != 1:
            self.say(["usage: source <file>"])
            return
        try:
            with open(args[0], encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            self.say([f"source: cannot read {args[0]}: {exc.strerror}"])
            return
        for raw in lines:
            command = raw.strip()
            if command.startswith(self.prompt.strip()):
                command = command[len(self.prompt.strip()):].strip()
            if not command or command.startswith("#"):
                continue
            self.say([f"{self.prompt}{command}"])
            stop = self.postcmd(self.onecmd(self.precmd(command)), command)
            if stop:
                break

    # --- lab commands --------------------------------------------------------------------
    def do_lab(self, _line: str) -> None:
        """Show this lab: topology, defense, run folder, hosts and their addresses."""
        self.say(session_banner(self.opts, self.lab, self.files))

    def do_sleep(self, line: str) -> None:
        """Wait, e.g. for the process or a defense to move on.
           Usage: sleep SECONDS   (up to 600; Ctrl-C stops waiting)"""
        try:
            seconds = float(line.strip())
        except ValueError:
            self.say(["usage: sleep SECONDS"])
            return
        if not 0 <= seconds <= MAX_SLEEP_S:
            self.say([f"sleep: between 0 and {MAX_SLEEP_S:g} seconds"])
            return
        time.sleep(seconds)

    def do_mtd(self, line: str) -> None:
        """Moving-target defense: each protected host's real and current virtual address.
           Usage: mtd        the current mapping
                  mtd log [N] the last N hops (default 10)"""
        args = line.split()
        if self.opts.defense == "none":
            self.say(["mtd: no defense running (start the lab with --defense rhm or "
                      "--defense nat)"])
            return
        if args and args[0] != "log":
            self.say(["usage: mtd | mtd log [N]"])
            return
        hops = labviews.hops_from_records(self._hop_records())
        if args:
            try:
                n_lines = int(args[1]) if len(args) > 1 else labviews.DEFAULT_HOP_LOG_LINES
            except ValueError:
                self.say(["usage: mtd log [N]"])
                return
            self.say(labviews.format_mtd_log(hops, max(1, n_lines)))
        else:
            self.say(labviews.format_mtd(self.opts.defense, hops, time.time()))

    def _hop_records(self) -> list[dict[str, Any]]:
        if self.opts.defense == "rhm":
            return _read_jsonl(self.files.hop_log)
        records: list[dict[str, Any]] = []
        for host in self.plan.protected:
            records += _read_jsonl(self.files.nat_hop_log(host.name))
        return sorted(records, key=lambda r: (r.get("t_s") or 0.0, str(r.get("host"))))

    def do_plc(self, _line: str) -> None:
        """Each PLC's process state from its ground-truth log: values (and their change
           over the last 5 s), coils, setpoints, alarms."""
        if not self.ics.plcs:
            self.say(["plc: no PLC in this topology"])
            return
        lines: list[str] = []
        for dev in self.ics.plcs:
            try:
                header, tail = read_tail(dev.state_csv)
            except OSError as exc:
                lines.append(f"{dev.name}: no state yet ({exc.strerror})")
                continue
            view = labviews.plc_view(dev.name, dev.ip, dev.process, header, tail)
            if view is None:
                lines.append(f"{dev.name}: no complete state row yet")
            else:
                lines += labviews.format_plc(view)
            if dev.proc.poll() is not None:
                lines.append(f"  ({dev.name}'s PLC process has exited with {dev.proc.returncode})")
        self.say(lines)

    def do_hmi(self, line: str) -> None:
        """The HMI's view so far: availability and latency of its polls, per PLC.
           (hmi COMMAND runs COMMAND in the hmi host, as for any host.)"""
        if line.strip():
            self.default(f"hmi {line}")
            return
        if self.ics.hmi_csv is None:
            self.say(["hmi: no HMI in this topology"])
            return
        try:
            with open(self.ics.hmi_csv, newline="") as f:
                metrics = summarize(records_from_csv(f))
        except OSError:
            metrics = []
        self.say(labviews.format_hmi(metrics, time.monotonic() - self.hmi_started_s))

    def do_detector(self, _line: str) -> None:
        """The scan detector: which sources it blocked, why, and for how long."""
        if not self.opts.detector:
            self.say(["detector: not running (start the lab with --detector)"])
            return
        self.say(labviews.format_detections(_read_jsonl(self.files.detect_log), time.time()))

    def do_attack(self, line: str) -> None:
        """Run an attack module in the attacker host and summarize its outcome.
           Usage: attack NAME [OPTIONS]   e.g. attack recon --ports 502
           --plan, --out and (unless given) --targets are filled in; host names in
           --targets become addresses. attack alone lists the attacks."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.say([f"attack: {exc}"])
            return
        if not words:
            self.say(["attacks: " + ", ".join(ATTACK_TARGETS)
                      + "  (python -m attacks.NAME --help lists each one's options)"])
            return
        attacker = self.plan.attacker
        if attacker is None:
            self.say([f"attack: the {self.plan.name} topology has no attacker host; run tools "
                      "in a host directly (e.g. h3 nmap -sn -n 10.0.0.0/24)"])
            return
        name = words[0]
        self.attack_count += 1
        self.files.attacks_dir.mkdir(exist_ok=True)
        stem = f"{name}-{self.attack_count:02d}"
        out_path = self.files.attacks_dir / f"{stem}.json"
        try:
            argv = attack_argv(name, words[1:], self.plan, self.files.plan_path, out_path)
        except CommandError as exc:
            self.say([f"attack: {exc}"])
            return
        self.say([f"attack {name}: running in {attacker.name} (at most "
                  f"{self.opts.attack_timeout_s:g} s; Ctrl-C stops it); outcome {out_path}"])
        code, note = self._run_attack(attacker.name, argv, f"attacks/{stem}.log")
        outcome = None
        if out_path.is_file():
            try:
                outcome = json.loads(out_path.read_text())
            except ValueError:
                note = (note + "; " if note else "") + "unreadable outcome"
        lines = labviews.summarize_outcome(name, outcome, code, note)
        if outcome is None:
            lines.append(f"  log: {_last_line(self.files.run_dir / 'attacks' / f'{stem}.log')}")
        self.say(lines)

    def _run_attack(self, host: str, argv: list[str], log_name: str) -> tuple[int | None, str]:
        proc = self.lab.popen(host, [sys.executable, "-u", *argv], log_name,
                              what=argv[1])
        deadline = time.monotonic() + self.opts.attack_timeout_s
        note = ""
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    note = f"stopped after {self.opts.attack_timeout_s:g} s"
                    break
                time.sleep(0.1)
        except KeyboardInterrupt:
            note = "stopped by Ctrl-C"
        code = self.lab.stop(proc, grace_s=ATTACK_STOP_GRACE_S)
        return code, note


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(none)"
    return lines[-1] if lines else "(empty)"


def session_banner(opts: LabModeOptions, lab: Lab, files: RunFiles) -> list[str]:
    """What the lab is: topology, controller, defense, run folder, hosts, switches."""
    plan = lab.plan
    defense = opts.defense + (" + scan detector" if opts.detector else "")
    hosts = ", ".join(f"{h.name} {h.ip}" for h in plan.hosts)
    switches = ", ".join(sw.name for sw in plan.switches)
    prefix = lab.cfg.switch_prefix
    bridges = f" (bridges {', '.join(prefix + s.name for s in plan.switches)})" if prefix else ""
    return [
        f"lab: {plan.name} topology, controller app {lab.cfg.app} on {lab.cfg.engine}, "
        f"datapath {lab.cfg.datapath}, defense {defense}",
        f"lab: hosts {hosts}; switches {switches}{bridges}",
        f"lab: run folder {files.run_dir}",
        "lab: commands mtd, plc, hmi, attack, detector, sleep (help NAME); exit or Ctrl-D "
        "tears the lab down",
    ]


# --- the session --------------------------------------------------------------------------
@contextlib.contextmanager
def mininet_output_on_stdout() -> Iterator[None]:
    """Mininet's command output (its ``output`` level) on stdout while the prompt runs."""
    from mininet.log import setLogLevel

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


def start_nat_defense(lab: Lab, opts: LabModeOptions, files: RunFiles,
                      ready_timeout_s: float = 20.0) -> None:
    """``python -m defenses.nat_hop`` in every protected host, each ready (first address set)."""
    start_epoch_s = time.time()
    procs = [(h.name, lab.python(h.name, "defenses.nat_hop",
                                 nat_hop_args(opts, files, h.name, start_epoch_s),
                                 f"nat_hop-{h.name}.log")) for h in lab.plan.protected]
    for name, proc in procs:
        lab.wait_for_log(f"nat_hop-{name}.log", "nat_hop ready", ready_timeout_s, proc)


def run_session(opts: LabModeOptions) -> int:
    """Build the lab, run the prompt (or the script), tear down; returns the exit status."""
    from lab import platform
    from lab.lifecycle import LabConfig, running_lab
    from lab.lock import RunLock
    from lab.platform import resolve_engine

    platform.require_lab_prerequisites(need_nmap=False)
    datapath = platform.choose_datapath(opts.datapath)
    engine = resolve_engine(opts.engine)
    plan = plan_for(opts.topo)
    handled = [signal.SIGTERM, signal.SIGHUP] + ([signal.SIGINT] if opts.script else [])
    previous = {s: signal.signal(s, _raise_interrupted) for s in handled}
    try:
        with RunLock(f"lab mode ({opts.topo})"):
            files = RunFiles.under(new_run_dir(opts.out_root))
            plan.save(files.plan_path)
            app, controller_args = controller_setup(opts, files)
            cfg = LabConfig(plan=plan, log_dir=files.run_dir, engine=engine,
                            datapath=datapath, app=app, controller_args=controller_args)
            print(f"lab: starting the {plan.name} network (controller {app} on {engine})...",
                  flush=True)
            with running_lab(cfg) as lab:
                ics = start_ics(lab, files.run_dir)
                if opts.defense == "nat":
                    start_nat_defense(lab, opts, files)
                lab.check_healthy()
                print("\n".join(session_banner(opts, lab, files)), flush=True)
                with mininet_output_on_stdout(), _cli_stdin(opts) as stdin:
                    LabCli(lab, ics, opts, files, stdin=stdin,
                           script=str(opts.script) if opts.script else None)
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
