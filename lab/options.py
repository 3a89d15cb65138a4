"""Lab mode's command line: the options of a session, their checks, and its run folder.

See :mod:`lab.mode` for the commands; every error here is a :class:`UserError` of one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.cli import OneLineParser, int_in
from common.errors import UserError
from common.hopschedule import MutationConfig
from common.plan import plan_for
from lab import defenses
from lab.capture import parse_capture
from lab.dashboard import DEFAULT_PORT as DASHBOARD_PORT
from lab.defenses import DEFENSES, DefenseSettings
from lab.devices import load_plant_plan

TOPOS = ("ics", "classic")
ENGINES = ("auto", "ryu", "os-ken")
DATAPATHS = ("auto", "user", "kernel")
MAX_ATTACK_TIMEOUT_S = 3600.0
MAX_FLOW_IDLE_S = 0xFFFF


def _positive_float(limit: float) -> Callable[[str], float]:
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
    hop_interval_s, hop_jitter_s, seed, flow_idle_s: the moving-target defense's schedule
        (rhm and nat; each interval drawn from hop_interval_s ± hop_jitter_s, seeded).
    attack_timeout_s: bound of one ``attack`` command.
    pcap: what to capture from the start (``--pcap``: :func:`lab.capture.parse_capture`
        text, checked); None: nothing until a ``pcap start`` command.
    """

    topo: str = "ics"
    plant: Path | None = None
    defense: str = "none"
    detector: bool = False
    engine: str = "auto"
    datapath: str = "auto"
    script: Path | None = None
    out_root: Path = Path("results")
    hop_interval_s: float = 5.0
    hop_jitter_s: float = 0.0
    seed: int = 1
    flow_idle_s: int = MutationConfig().flow_idle_timeout_s
    attack_timeout_s: float = 120.0
    dashboard_port: int | None = None
    pcap: str | None = None

    def defense_settings(self) -> DefenseSettings:
        """What :mod:`lab.defenses` starts for this session."""
        return DefenseSettings(self.defense, hop_interval_s=self.hop_interval_s, seed=self.seed,
                               flow_idle_s=self.flow_idle_s, detector=self.detector,
                               jitter_s=self.hop_jitter_s)


def build_parser(prog: str, default_topo: str = "ics") -> OneLineParser:
    """The lab-mode command line (see the module docstring)."""
    parser = OneLineParser(
        prog=prog, description="The emulated ICS at the mininet> prompt (lab mode).",
        epilog="Run as root. Leaving the prompt tears the whole lab down.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cli", action="store_true", help="open the interactive mininet> prompt")
    mode.add_argument("--script", type=Path, default=None, metavar="FILE",
                      help="run the commands of FILE (one a line), then tear down")
    parser.add_argument("--topo", choices=TOPOS, default=default_topo)
    parser.add_argument("--plant", type=Path, default=None, metavar="FILE",
                        help="plant file (YAML, docs/plants.md); replaces --topo")
    parser.add_argument("--defense", choices=DEFENSES, default="none",
                        help="rhm: address hopping in the controller; nat: iptables NAT "
                             "hopping in each PLC host")
    parser.add_argument("--detector", action="store_true",
                        help="run the controller's scan detector")
    parser.add_argument("--engine", choices=ENGINES, default="auto")
    parser.add_argument("--datapath", choices=DATAPATHS, default="auto")
    parser.add_argument("--hop-interval-s", type=_positive_float(3600.0), default=5.0,
                        help="seconds between two address hops (default 5)")
    parser.add_argument("--hop-jitter-s", type=float, default=0.0,
                        help="each hop interval drawn from --hop-interval-s ± this, seeded "
                             "(default 0: a fixed period)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the hop schedule")
    parser.add_argument("--flow-idle-s", type=int_in(1, MAX_FLOW_IDLE_S),
                        default=LabModeOptions.flow_idle_s,
                        help="a conversation keeps its virtual address until idle this long "
                             f"(default {LabModeOptions.flow_idle_s})")
    parser.add_argument("--attack-timeout-s", type=_positive_float(MAX_ATTACK_TIMEOUT_S),
                        default=120.0, help="bound of one attack command (default 120)")
    parser.add_argument("--pcap", metavar="WHAT", nargs="?", const="all", default=None,
                        help="capture full frames from the start into the run folder's "
                             "pcap/: host names, switch ports (s1-eth1), hosts, trunks or "
                             "all (the default); the OpenFlow channel always "
                             "(docs/captures.md; the pcap command does it at the prompt)")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="results root; the run folder is OUT/lab/<timestamp>")
    parser.add_argument("--dashboard", type=int_in(0, 65535), nargs="?", const=DASHBOARD_PORT,
                        default=None, metavar="PORT",
                        help="serve the live dashboard on http://127.0.0.1:PORT/ (default "
                             f"{DASHBOARD_PORT}; 0: any free port; docs/dashboard.md)")
    return parser


def parse_options(argv: Sequence[str] | None, prog: str,
                  default_topo: str = "ics") -> LabModeOptions:
    """Parse and check the command line; UserError (one line) on anything wrong."""
    args = build_parser(prog, default_topo).parse_args(argv)
    if not args.cli and args.script is None:
        raise UserError("nothing to do: give --cli (the mininet> prompt) or --script FILE")
    if args.script is not None and not args.script.is_file():
        raise UserError(f"--script {args.script}: no such file")
    if not 0 <= args.hop_jitter_s < args.hop_interval_s:
        raise UserError(f"--hop-jitter-s {args.hop_jitter_s:g}: expected 0 <= jitter < "
                        f"--hop-interval-s ({args.hop_interval_s:g})")
    if args.pcap is not None:
        parse_capture(args.pcap, plan_for(args.topo))  # a bad name fails before the lab
    if args.plant is not None:
        load_plant_plan(args.plant)  # one line naming the key path, before anything exists
    return LabModeOptions(topo=args.topo, plant=args.plant, defense=args.defense,
                          detector=args.detector,
                          engine=args.engine, datapath=args.datapath, script=args.script,
                          out_root=args.out, hop_interval_s=args.hop_interval_s,
                          hop_jitter_s=args.hop_jitter_s,
                          seed=args.seed, flow_idle_s=args.flow_idle_s,
                          attack_timeout_s=args.attack_timeout_s, pcap=args.pcap,
                          dashboard_port=args.dashboard)


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
    """Where a session writes: the run folder and the files the commands read (the
    defense's hop logs are :mod:`lab.defenses`')."""

    run_dir: Path
    plan_path: Path
    detect_log: Path
    attacks_dir: Path

    @classmethod
    def under(cls, run_dir: Path) -> RunFiles:
        return cls(run_dir=run_dir, plan_path=run_dir / "plan.json",
                   detect_log=defenses.detect_log(run_dir), attacks_dir=run_dir / "attacks")


def new_run_dir(out_root: Path, now: dt.datetime | None = None) -> Path:
    """``out_root/lab/<UTC timestamp>`` (``-2``, ``-3``... when taken), created."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
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
