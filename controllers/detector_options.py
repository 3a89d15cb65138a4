"""Command-line options of the ``detector`` app, read by the launcher (see
:mod:`controllers.registry`); the ``rhm`` app reuses them behind ``--detector``.

Framework-free: parsing them loads no OpenFlow engine.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from controllers.detector_core import DetectorConfig


@dataclass(frozen=True)
class DetectorSettings:
    """detect_log: path of the JSON-lines detection log, or None."""

    config: DetectorConfig = field(default_factory=DetectorConfig)
    detect_log: str | None = None


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The detector's options (``--window-s`` ...), shared by the ``detector`` and ``rhm`` apps."""
    d = DetectorConfig()
    parser.add_argument("--window-s", type=float, default=d.window_s,
                        help=f"sliding window of the scan detector (default {d.window_s:g})")
    parser.add_argument("--max-dsts", type=int, default=d.max_dsts,
                        help=f"distinct destinations per source allowed in the window "
                             f"(default {d.max_dsts})")
    parser.add_argument("--max-ports", type=int, default=d.max_ports,
                        help=f"distinct destination ports per source allowed in the window "
                             f"(default {d.max_ports})")
    parser.add_argument("--block-s", type=int, default=d.block_s,
                        help=f"hard timeout of a scanner's drop flows (default {d.block_s})")
    parser.add_argument("--detect-log", default=None,
                        help="append one JSON line per detection to this file")


def config_from_args(args: argparse.Namespace) -> DetectorConfig:
    """DetectorConfig from parsed options; ValueError names the bad option."""
    try:
        return DetectorConfig(window_s=args.window_s, max_dsts=args.max_dsts,
                              max_ports=args.max_ports, block_s=args.block_s)
    except ValueError as exc:
        raise ValueError(f"detector options: {exc}") from None


def settings_from_args(args: argparse.Namespace) -> DetectorSettings:
    """The ``detector`` app's settings (what the launcher stores for the app)."""
    return DetectorSettings(config=config_from_args(args), detect_log=args.detect_log)
