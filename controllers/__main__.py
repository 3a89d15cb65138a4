"""Launcher: ``python -m controllers <app> [--engine ryu|os-ken] [--ofp-port N] ...``.

Runs one controller app in this process on Ryu (in-process AppManager, as ``ryu-manager``
does) or os-ken (which has no manager command in 4.x). Listens on loopback only.

Contract with the experiment runner:

- readiness: the log line ``controller ready engine=<name> version=<v> port=<N>`` appears
  once the OpenFlow socket is listening; then ``switch connected dpid=<16 hex>`` per switch.
- failure: a log containing ``HANDLER EXCEPTION`` or ``Traceback`` means the trial is invalid.
- exit codes: 0 after SIGTERM/SIGINT, 2 on bad input (one line on stderr, no traceback),
  1 when the controller failed after start-up (logged).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.cli import OneLineParser
from common.errors import UserError
from controllers.registry import APPS, AppEntry, set_app_settings

LOG = logging.getLogger("controllers.launcher")
_LAUNCHED_S = time.monotonic()  # startup time in the ready line counts engine imports too

PROG = "python -m controllers"
DEFAULT_OFP_PORT = 6653
DEFAULT_OFP_HOST = "127.0.0.1"
ENGINE_CHOICES = ("ryu", "os-ken")
LISTEN_TIMEOUT_S = 15.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser(entry: AppEntry | None = None, add_help: bool = True
                 ) -> argparse.ArgumentParser:
    """The launcher's parser, with ``entry``'s own options when it has some; its errors raise
    UserError instead of printing usage."""
    parser = OneLineParser(
        prog=PROG,
        description="Run an OpenFlow controller app on Ryu or os-ken, on loopback only.",
        epilog="apps: " + ", ".join(APPS) + " (or 'list')",
        add_help=add_help,
    )
    module = entry.options_module() if entry is not None else None
    if module is not None:
        module.add_arguments(parser.add_argument_group(f"{entry.name} options"))
    parser.add_argument("app", help="short app name (see 'list'), or 'list'")
    parser.add_argument("--engine", help="ryu or os-ken (default: $SDNICS_ENGINE, else Ryu "
                        "if importable, else os-ken)")
    parser.add_argument("--ofp-port", default=str(DEFAULT_OFP_PORT),
                        help=f"OpenFlow TCP port (default {DEFAULT_OFP_PORT})")
    parser.add_argument("--ofp-host", default=DEFAULT_OFP_HOST,
                        help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--cluster-facing", action="store_true",
                        help="cluster runs: --ofp-host may be this machine's cluster-facing "
                        "address (one address, never 0.0.0.0)")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="write the log here instead of stderr")
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG level")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with the named app's options included (a first pass finds the app's name)."""
    try:
        first, _rest = build_parser(add_help=False).parse_known_args(argv)
        entry = APPS.get(first.app)
    except UserError:
        entry = None  # the full parse below reports what is wrong
    args = build_parser(entry).parse_args(argv)
    module = entry.options_module() if entry is not None else None
    if module is not None:
        try:
            set_app_settings(entry.name, module.settings_from_args(args))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return args


def parse_port(text: str) -> int:
    """A TCP port 1-65535 from ``text`` (base 10 only: ``0x...`` is refused)."""
    try:
        port = int(text, 10)
    except ValueError:
        raise UserError(f"--ofp-port: not a number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise UserError(f"--ofp-port: {port} out of range 1-65535")
    return port


def parse_loopback(text: str, cluster_facing: bool = False) -> str:
    """The listen address, which must be a loopback IP (``localhost`` means 127.0.0.1); with
    ``cluster_facing``, one unicast address (binding it proves it is this machine's)."""
    if text == "localhost":
        return DEFAULT_OFP_HOST
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise UserError(f"--ofp-host: not an IP address: {text!r}") from None
    if cluster_facing and not (address.is_unspecified or address.is_multicast):
        return str(address)
    if not address.is_loopback:
        raise UserError(f"--ofp-host: {text} is not a loopback address; the controller "
                         "listens on loopback only")
    return str(address)


def check_port_free(host: str, port: int) -> None:
    """Raise UserError when something already listens on host:port.

    Bound without SO_REUSEPORT on purpose: the engines listen with SO_REUSEPORT (eventlet's
    default), so a second controller would otherwise share the port and steal switches.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"--ofp-port: {host}:{port} is already in use") from None
            raise UserError(f"--ofp-host/--ofp-port: cannot bind {host}:{port}: "
                             f"{exc.strerror}") from None


def _own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def is_listening(port: int) -> bool:
    """True when this process owns a TCP socket in LISTEN state on ``port`` (Linux /proc)."""
    listen_state = "0A"
    owned = _own_socket_inodes()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == listen_state and cols[9] in owned:
                return True
    return False


def setup_logging(log_file: Path | None, verbose: bool) -> None:
    """Root logger to ``log_file`` (appended) or stderr; engine loggers propagate to it."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)


def _load_engine(name: str | None) -> Any:
    """Import controllers.engine for ``name`` (None: automatic). Raises UserError."""
    if name is not None:
        if name not in ENGINE_CHOICES:
            raise UserError(f"--engine: unknown engine {name!r} (choose ryu or os-ken)")
        os.environ["SDNICS_ENGINE"] = name
    try:
        from controllers import engine
    except ImportError as exc:  # EngineError included
        raise UserError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
    return engine


def _log_app_stats() -> None:
    """One ``controller stats app=<name> {json}`` line per app that counts things.

    Apps expose ``stats_summary() -> dict``; the experiments and the hostile-traffic tests
    read packet-ins, parse errors and handler exceptions from these lines.
    """
    try:
        from controllers import engine

        apps = dict(engine.AppManager.get_instance().applications)
    except Exception:  # stopping must not fail because of a report
        return
    for name, app in apps.items():
        summary = getattr(app, "stats_summary", None)
        if callable(summary):
            try:
                LOG.info("controller stats app=%s %s", name, json.dumps(summary()))
            except Exception as exc:
                LOG.warning("controller stats app=%s unavailable: %s", name, exc)


def _install_signal_handlers() -> None:
    def stop(signum: int, _frame: object) -> None:
        LOG.info("controller stopping signal=%s", signal.Signals(signum).name)
        _log_app_stats()
        logging.shutdown()
        # Exit right here: unwinding through the engine's threads (native in os-ken,
        # green in Ryu) from a signal handler is not reliable, and the controller holds
        # no state worth saving; the kernel closes the switch connections.
        os._exit(EXIT_OK)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _join_interruptibly(services: list[Any], engine: Any) -> None:
    """Wait for the app threads in short slices.

    os-ken runs native threads: a main thread blocked in a plain ``join()`` never runs the
    Python SIGTERM handler when the kernel delivers the signal to another thread (measured:
    half of all SIGTERMs were ignored). A sleep slice returns to the interpreter, which then
    runs the pending handler. Ryu's green threads are waited for as before.
    """
    if not all(isinstance(s, threading.Thread) for s in services):
        engine.hub.joinall(services)
        return
    while any(s.is_alive() for s in services):
        time.sleep(0.2)


def run(entry: AppEntry, engine: Any, host: str, port: int) -> int:
    """Load ``entry``'s modules into the engine's AppManager and serve until stopped."""
    engine.prepare_process()
    manager = engine.AppManager.get_instance()
    manager.load_apps(list(entry.modules))
    # After load_apps, so every option the app modules register exists before parsing.
    engine.configure_listener(host, port)
    contexts = manager.create_contexts()
    services = list(manager.instantiate_apps(**contexts))
    deadline_s = time.monotonic() + LISTEN_TIMEOUT_S
    while not is_listening(port):
        if time.monotonic() > deadline_s:
            LOG.error("controller failed to listen on %s:%d within %.0f s",
                      host, port, LISTEN_TIMEOUT_S)
            return EXIT_FAILED
        engine.hub.sleep(0.02)
    LOG.info("controller ready engine=%s version=%s port=%d host=%s app=%s startup_s=%.2f",
             engine.ENGINE_NAME, engine.ENGINE_VERSION, port, host, entry.name,
             time.monotonic() - _LAUNCHED_S)
    _join_interruptibly(services, engine)
    LOG.error("controller apps stopped on their own")
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, start the controller, return the exit code (see module docstring)."""
    try:
        args = parse_args(argv)
        if args.app == "list":
            for entry in APPS.values():
                print(f"{entry.name:10} {entry.description}  [{', '.join(entry.modules)}]")
            return EXIT_OK
        entry = APPS.get(args.app)
        if entry is None:
            raise UserError(f"unknown app {args.app!r} (choose from: {', '.join(APPS)}, list)")
        port = parse_port(args.ofp_port)
        host = parse_loopback(args.ofp_host, args.cluster_facing)
        check_port_free(host, port)
        engine = _load_engine(args.engine)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(args.log_file, args.verbose)
    _install_signal_handlers()
    try:
        return run(entry, engine, host, port)
    except Exception:
        LOG.exception("controller failed")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
