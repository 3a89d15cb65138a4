"""Command-line options of the ``rhm`` app, read by the launcher (see
:mod:`controllers.registry`); ``--detector`` adds the detector's own
(:mod:`controllers.detector_options`).

Framework-free: parsing them loads no OpenFlow engine.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from common.hopschedule import ARP_MAC_CHOICES, HopSchedule, MutationConfig
from common.plan import AddressPlan, ics_plan
from controllers.detector_options import DetectorSettings
from controllers.detector_options import add_arguments as add_detector_arguments
from controllers.detector_options import config_from_args as detector_config_from_args
from controllers.rhm_decoys import DecoyError, check_decoys
from controllers.rhm_types import NO_HARDENING, Hardening


@dataclass(frozen=True)
class RhmSettings:
    """The ``rhm`` app's settings.

    plan_path: the address plan's JSON (None: the built-in ``ics`` plan).
    spoof_log: where spoofing events go (``--detect-log``, with or without ``--detector``).
    decoys: how many decoy responders in the pool (:mod:`controllers.rhm_decoys`).
    hop_log: JSON-lines hop log path, or None. detector: scan-detector settings when enabled.
    """

    plan_path: str | None = None
    config: MutationConfig = field(default_factory=MutationConfig)
    hop_log: str | None = None
    detector: DetectorSettings | None = None
    hardening: Hardening = field(default_factory=Hardening)
    spoof_log: str | None = None
    decoys: int = 0

    def load_plan(self) -> AddressPlan:
        return AddressPlan.load(Path(self.plan_path)) if self.plan_path else ics_plan()


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``rhm`` app's options, detector options included (used with ``--detector``)."""
    d = MutationConfig()
    parser.add_argument("--plan", default=None,
                        help="address plan JSON (default: the built-in ics plan)")
    parser.add_argument("--hop-interval-s", type=float, default=d.hop_interval_s,
                        help=f"seconds between address changes (default {d.hop_interval_s:g})")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help=f"seed of the hop schedule (default {d.seed})")
    parser.add_argument("--jitter-s", "--jitter", dest="jitter_s", type=float,
                        default=d.jitter_s,
                        help="each interval is hop-interval +/- up to this (default 0)")
    parser.add_argument("--flow-idle-s", type=int, default=d.flow_idle_timeout_s,
                        help="a conversation keeps its virtual address until idle this long "
                             f"(default {d.flow_idle_timeout_s})")
    parser.add_argument("--arp-mac", choices=ARP_MAC_CHOICES, default=d.arp_mac,
                        help="MAC in ARP answers for virtual addresses (default virtual)")
    parser.add_argument("--hop-log", default=None,
                        help="append one JSON line per hop to this file")
    parser.add_argument("--no-hardening", action="store_true",
                        help="the pre-hardening defense, for comparison: trust by (IP, MAC) "
                             "on any port, no SYN guard at retired addresses, ICMP errors "
                             "with the real address quoted")
    parser.add_argument("--retired-grace-s", type=float, default=None,
                        help="cut an untrusted peer's conversation this long after its "
                             "address retired (default: keep it until idle)")
    parser.add_argument("--decoys", type=int, default=0,
                        help="answer ARP and ping for this many decoy addresses of the pool, "
                             "re-drawn at every hop (default 0)")
    parser.add_argument("--detector", action="store_true",
                        help="run the scan detector in front (options below)")
    add_detector_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> RhmSettings:
    """RhmSettings from parsed options; ValueError names the problem."""
    config = MutationConfig(hop_interval_s=args.hop_interval_s, jitter_s=args.jitter_s,
                            seed=args.seed, flow_idle_timeout_s=args.flow_idle_s,
                            arp_mac=args.arp_mac)
    if args.retired_grace_s is not None and args.retired_grace_s < 0:
        raise ValueError(f"--retired-grace-s {args.retired_grace_s:g}: expected >= 0")
    base = NO_HARDENING if args.no_hardening else Hardening()
    hardening = Hardening(base.bind_ports, base.syn_guard, base.icmp_rewrite,
                          args.retired_grace_s)
    settings = RhmSettings(
        plan_path=args.plan, config=config, hop_log=args.hop_log, hardening=hardening,
        spoof_log=args.detect_log, decoys=args.decoys,
        detector=(DetectorSettings(detector_config_from_args(args), args.detect_log)
                  if args.detector else None))
    try:
        plan = settings.load_plan()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--plan: cannot load {args.plan}: {exc}") from None
    schedule = HopSchedule(plan.protected, plan.virtual_pool, config)  # raises: pool too small
    try:
        check_decoys(args.decoys, len(schedule.pool), len(plan.protected))
    except DecoyError as exc:
        raise ValueError(f"--decoys: {exc}") from None
    return settings

