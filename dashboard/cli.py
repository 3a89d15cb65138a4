"""``python -m dashboard FOLDER``: serve the dashboard of a run folder or a bundle.

    python -m dashboard results/lab/20260101T120000Z            # live (lab mode)
    python -m dashboard results/recon/latest --replay --speed 10 # replay a finished bundle

Prints ``dashboard: http://127.0.0.1:PORT/ ...`` and ``dashboard ready port=PORT`` once it
listens; SIGTERM or Ctrl-C stops it (exit 0). Exit 2 for bad input (no such folder, a port
in use), with one line on stderr. The lab starts it as a process (``--dashboard``,
:mod:`lab.dashboard`); ``python -m experiments.dashboard BUNDLE`` is the replay's name.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from common.cli import OneLineParser, int_in, number_in, run_main
from common.errors import UserError
from dashboard.runs import find_runs
from dashboard.server import make_app, serve
from dashboard.snapshot import DEFAULT_WINDOW_S
from dashboard.source import MAX_SPEED, LiveSource, ReplaySource

DEFAULT_PORT = 8765


def build_parser(prog: str = "python -m dashboard", replay_only: bool = False
                 ) -> OneLineParser:
    parser = OneLineParser(prog=prog, description=(
        "Replay a finished bundle's timeline in the dashboard page." if replay_only else
        "The live dashboard of a lab-mode run folder or an experiment's bundle."))
    parser.add_argument("folder", type=Path,
                        help="a bundle (results/<experiment>/<stamp>) or a lab-mode run folder")
    parser.add_argument("--port", type=int_in(0, 65535), default=DEFAULT_PORT,
                        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free)")
    if not replay_only:
        parser.add_argument("--replay", action="store_true",
                            help="play a finished folder back instead of following it")
    parser.add_argument("--speed", type=number_in(float, 1.0, MAX_SPEED), default=1.0,
                        help="replay speed, 1 to 20 (default 1)")
    parser.add_argument("--window-s", type=number_in(float, 10.0, 3600.0, unit=" s"),
                        default=DEFAULT_WINDOW_S,
                        help=f"history the charts show (default {DEFAULT_WINDOW_S:g} s)")
    return parser


async def _run(app_source: LiveSource | ReplaySource, port: int) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, task.cancel)

    def ready(bound: int) -> None:
        print(f"dashboard: http://127.0.0.1:{bound}/ ({app_source.mode}, "
              f"{app_source.folder})", flush=True)
        print(f"dashboard ready port={bound}", flush=True)

    try:
        await serve(make_app(app_source), port, ready)
    except asyncio.CancelledError:
        pass


def main(argv: Sequence[str] | None = None, prog: str = "python -m dashboard",
         replay_only: bool = False) -> int:
    """Parse, check the folder, serve until stopped."""
    def body() -> int:
        args = build_parser(prog, replay_only).parse_args(argv)
        replay = replay_only or args.replay
        if not args.folder.is_dir():
            raise UserError(f"{args.folder}: no such folder")
        if replay and not find_runs(args.folder):
            raise UserError(f"{args.folder}: not a bundle or a lab run folder (no "
                            "raw/trial-*/controller.log, no controller.log)")
        source: LiveSource | ReplaySource = (
            ReplaySource(args.folder, args.speed, args.window_s) if replay
            else LiveSource(args.folder, args.window_s))
        try:
            asyncio.run(_run(source, args.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {args.port} on 127.0.0.1 is in use (--port)") from None
            raise UserError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}") from None
        return 0
    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
