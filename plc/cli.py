"""What the PLCs' and the HMI's command lines share: the options every PLC server takes, the
one-line report of a usage error, their logging set-up, and the PLC servers' ``main``.

(The one-line parser itself is :class:`common.cli.OneLineParser`.)
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from common.cli import OneLineParser, number_in
from common.errors import UserError
from common.plan import DEFAULT_SCAN_CYCLE_MS
from plc.program import PROGRAMS

P = TypeVar("P")


def report_usage_error(prog: str, exc: UserError) -> int:
    """Print ``PROG: error: MESSAGE`` as one stderr line; the exit status (2)."""
    sys.stderr.write(f"{prog}: error: {exc}\n")
    return exc.exit_code


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; pymodbus's own errors are ours to report, so it is muted."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def ip_address(text: str) -> str:
    """argparse type: an IPv4 or IPv6 address, normalized."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def params_json(text: str) -> dict[str, float]:
    """argparse type: process-model parameters as a JSON object of numbers."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from None
    if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise argparse.ArgumentTypeError("expected a JSON object of numbers")
    return value


def plc_parser(module: str, protocol: str, default_port: int, min_port: int = 1
               ) -> OneLineParser:
    """The parser of a PLC server (``python -m plc.<module>``) with the options every PLC
    takes; the caller adds its protocol's own.

    min_port: 0 lets the server pick any free port (it reports it in its ready line).
    """
    p = OneLineParser(prog=f"python -m plc.{module}",
                      description=f"{protocol} PLC running a simulated physical process.")
    p.add_argument("--process", required=True, choices=sorted(PROGRAMS))
    p.add_argument("--host", type=ip_address, default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", type=number_in(int, min_port, 65535), default=default_port,
                   help="TCP port" + (" (0: any free port, reported in the ready line)"
                                      if min_port == 0 else ""))
    p.add_argument("--cycle-ms", type=number_in(float, 1, 60000), default=DEFAULT_SCAN_CYCLE_MS,
                   help="scan cycle period")
    p.add_argument("--state-csv", type=Path, help="ground-truth CSV, one row per scan")
    p.add_argument("--request-log", type=Path,
                   help=f"JSON-lines log of every {protocol} request served "
                        "(common.requestlog)")
    p.add_argument("--name", default="", help="PLC name in logs and the request log "
                                              "(default: process)")
    p.add_argument("--duration-s", type=number_in(float, 0.001, 1e9),
                   help="stop after this many seconds (default: run until signalled)")
    p.add_argument("--params", type=params_json, default=None, metavar="JSON",
                   help='process-model parameters, e.g. {"height_cm": 300} (plant files)')
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def plc_main(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
             make: Callable[[argparse.Namespace], P],
             run: Callable[[argparse.Namespace, P], None], log: logging.Logger) -> int:
    """A PLC server's ``main``: parse, ``make`` the PLC, set up logging, ``run`` it.

    Exit 2 with one line for bad input (``make``'s ValueError is a bad ``--params``; it
    raises UserError itself for a file it cannot write), 1 when ``run`` fails with an
    OSError (logged: the port is taken...), 0 otherwise, Ctrl-C included.
    """
    try:
        args = parser.parse_args(argv)
        try:
            plc = make(args)
        except ValueError as exc:
            raise UserError(f"--params: {exc}") from None
    except UserError as exc:
        return report_usage_error(parser.prog, exc)
    setup_logging(args.log_level)
    try:
        run(args, plc)
    except OSError as exc:
        log.error("plc failed: %s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
