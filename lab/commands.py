"""Lab mode's ``mininet>`` command set: Mininet's CLI plus ``mtd``, ``plc``, ``hmi``,
``attack``, ``detector``, ``pcap``, ``sleep``, ``lab`` and ``source``, and the pure helpers
they use.

What each command prints is built by :mod:`lab.views`; attacks run through
:mod:`lab.hostrun`.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from mininet.cli import CLI
from mininet.log import output

from common import jsonlines
from common.errors import LabError, UserError
from common.groundtruth import read_ground_truth_tail
from common.plan import AddressPlan
from lab import views as labviews
from lab.capture import next_capture_folder, parse_capture, start_capture
from lab.defenses import RunningDefense
from lab.devices import Ics
from lab.hostrun import run_in_host
from lab.lifecycle import Lab
from lab.options import LabModeOptions, RunFiles
from plc.metrics import records_from_csv, summarize

# Attack modules the ``attack`` command runs, and what --targets means when not given:
# "subnet" the plan's subnet, "plc" the first PLC, "plcs" every PLC, "hmi+plc" the HMI and
# the first PLC (the two victims of a man in the middle).
ATTACK_TARGETS = {"recon": "subnet", "inject": "plc", "synflood": "plc", "mitm": "hmi+plc",
                  "iphop": "plcs", "ctrl_fuzz": "subnet", "modbus_fuzz": "plc"}
MAX_SLEEP_S = 600.0
# A Ctrl-C at the prompt this soon after a command ended belongs to that command (a second
# press while stopping a ping), not a request to leave the lab.
CTRL_C_GRACE_S = 1.0
CSV_TAIL_BYTES = 64 * 1024
ATTACK_STOP_GRACE_S = 10.0


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


# --- the prompt -------------------------------------------------------------------------
class LabCli(CLI):
    """Mininet's CLI with the lab's commands; a session ends when this returns."""

    prompt = "mininet> "
    helpStr = CLI.helpStr + (  # noqa: N815 - the name Mininet reads
        "Lab mode: mtd, plc, hmi, attack, detector, pcap, sleep and lab read the running ICS;\n"
        "help <command> says more. exit or Ctrl-D leaves the lab and tears it down.\n\n")

    def __init__(self, lab: Lab, ics: Ics, opts: LabModeOptions, files: RunFiles,
                 defense: RunningDefense, stdin: IO[str] = sys.stdin,
                 script: str | None = None) -> None:
        self.lab = lab
        self.ics = ics
        self.opts = opts
        self.files = files
        self.defense = defense
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
        hops = self.defense.hops()
        if args:
            try:
                n_lines = int(args[1]) if len(args) > 1 else labviews.DEFAULT_HOP_LOG_LINES
            except ValueError:
                self.say(["usage: mtd log [N]"])
                return
            self.say(labviews.format_mtd_log(hops, max(1, n_lines)))
        else:
            self.say(labviews.format_mtd(self.opts.defense, hops, time.time()))

    def do_plc(self, _line: str) -> None:
        """Each PLC's process state from its ground-truth log: values (and their change
           over the last 5 s), coils, setpoints, alarms."""
        if not self.ics.plcs:
            self.say(["plc: no PLC in this topology"])
            return
        lines: list[str] = []
        for dev in self.ics.plcs:
            try:
                rows = read_ground_truth_tail(dev.state_csv, CSV_TAIL_BYTES)
            except OSError as exc:
                lines.append(f"{dev.name}: no state yet ({exc.strerror})")
                continue
            view = labviews.plc_view(dev.name, dev.ip, dev.process, rows)
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
        self.say(labviews.format_detections(jsonlines.read(self.files.detect_log),
                                                 time.time()))

    def do_pcap(self, line: str) -> None:
        """Packet captures into the run folder (full frames; the OpenFlow channel always).
           Usage: pcap              what is captured now, file sizes
                  pcap start [WHAT] capture WHAT (host names, switch ports like s1-eth1,
                                    hosts, trunks, all; default all) into pcap/, pcap-2/...
                  pcap stop         stop capturing (leaving the lab stops it too)"""
        words = line.split()
        capture = self.lab.capture
        if not words or words == ["status"]:
            self.say(capture.status() if capture is not None else
                     ["pcap: nothing captured yet (pcap start [WHAT])"])
            return
        if words[0] == "stop" and len(words) == 1:
            if capture is None or not capture.running:
                self.say(["pcap: no capture running"])
                return
            capture.stop()
            self.say(capture.status())
            return
        if words[0] != "start" or len(words) > 2:
            self.say(["usage: pcap | pcap start [WHAT] | pcap stop"])
            return
        if capture is not None and capture.running:
            self.say([f"pcap: already capturing into {capture.folder} (pcap stop first)"])
            return
        try:
            spec = parse_capture(words[1] if len(words) > 1 else "all", self.plan, "pcap")
            self.lab.capture = start_capture(self.lab, spec,
                                             next_capture_folder(self.files.run_dir))
        except (UserError, LabError) as exc:
            self.say([f"pcap: {exc}"])
            return
        self.say([f"pcap: capturing {spec.describe()} into {self.lab.capture.folder}",
                  f"pcap: OpenFlow: tshark {self.lab.capture.info.tshark_hint()} "
                  "(README.txt and decode_as_entries are beside the pcaps)"])

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
        run = run_in_host(self.lab, attacker.name, argv[1], argv[2:], f"attacks/{stem}.log",
                          self.opts.attack_timeout_s, catch_interrupt=True,
                          grace_s=ATTACK_STOP_GRACE_S)
        code, note = run.code, run.note
        outcome = None
        if out_path.is_file():
            try:
                outcome = json.loads(out_path.read_text())
            except ValueError:
                note = (note + "; " if note else "") + "unreadable outcome"
        lines = labviews.summarize_outcome(name, outcome, code, note)
        if outcome is None:
            lines.append(f"  log: {run.last_log_line() or '(empty)'}")
        self.say(lines)


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
        "lab: commands mtd, plc, hmi, attack, detector, pcap, sleep (help NAME); exit or Ctrl-D "
        "tears the lab down",
    ]
