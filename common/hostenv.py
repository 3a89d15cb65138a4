"""What every attack CLI shares: the host-namespace check, argument parsing, the run wrapper.

An attack is started inside an emulated host (``host.popen([sys.executable, '-m',
'attacks.<name>', ...])``). :func:`run_attack` gives each one the same behaviour:

- bad arguments, an unreadable plan, a refused target (:class:`~common.scope.ScopeError`) or
  the root network namespace: one line on stderr, exit status 2, no traceback, nothing sent;
- the JSON outcome is written atomically (temporary file + ``os.replace``), so a reader never
  sees half a file;
- SIGTERM/SIGINT stop the attack cleanly: the body gets :class:`AttackInterrupted` raised in
  it, cleans up in its ``finally`` blocks, and the outcome is still written with
  ``"interrupted": true``; the exit status is then 128 + the signal number.

What it cannot do: survive SIGKILL (no outcome is written then), or check that the host
namespace belongs to *this* emulated network (it checks only that it is not the root one).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from common.cli import OneLineParser
from common.errors import UserError
from common.plan import AddressPlan, PlanError
from common.scope import ScopeError, expand_targets

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

SELF_NET_NS = "/proc/self/ns/net"
INIT_NET_NS = "/proc/1/ns/net"
# Where PID 1's namespace links are unreadable (a supervisor without ptrace rights over it),
# kthreadd (PID 2, a kernel thread) is in the initial network namespace by construction.
KTHREADD_NET_NS = "/proc/2/ns/net"
KTHREADD_COMM = "/proc/2/comm"


class HostEnvError(UserError):
    """The process is not where an attack may run (e.g. the root network namespace)."""


class AttackInterrupted(Exception):  # noqa: N818 - it is a request, not an error
    """Raised inside the attack body when SIGTERM or SIGINT arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


# --- namespace --------------------------------------------------------------------------
def _root_namespace_id(init_ns: str) -> tuple[int, int]:
    """(device, inode) of the root network namespace: PID 1's, else kthreadd's."""
    try:
        info = os.stat(init_ns)
        return info.st_dev, info.st_ino
    except PermissionError:
        pass
    except OSError as exc:
        raise HostEnvError(f"cannot read {init_ns} ({exc.strerror}); run as root inside an "
                           "emulated host") from None
    try:
        with open(KTHREADD_COMM, encoding="ascii") as handle:
            is_kthreadd = handle.read().strip() == "kthreadd"
        info = os.stat(KTHREADD_NET_NS)
    except OSError as exc:
        raise HostEnvError(f"cannot compare network namespaces ({exc}); run as root inside "
                           "an emulated host") from None
    if not is_kthreadd:
        raise HostEnvError(f"cannot read {init_ns} and PID 2 is not kthreadd: cannot tell the "
                           "root network namespace")
    return info.st_dev, info.st_ino


def in_root_namespace(self_ns: str = SELF_NET_NS, init_ns: str = INIT_NET_NS) -> bool:
    """True when this process shares the root network namespace (compares nsfs inodes).

    The root namespace is PID 1's; when PID 1's link is unreadable (even root may lack
    ptrace rights over a supervisor), kthreadd's, which is always the initial namespace.
    """
    try:
        mine = os.stat(self_ns)
    except OSError as exc:
        raise HostEnvError(f"cannot read {self_ns} ({exc.strerror})") from None
    return (mine.st_dev, mine.st_ino) == _root_namespace_id(init_ns)


def require_host_namespace(self_ns: str = SELF_NET_NS, init_ns: str = INIT_NET_NS) -> None:
    """Raise HostEnvError unless the process runs in a network namespace other than PID 1's."""
    if in_root_namespace(self_ns, init_ns):
        raise HostEnvError("refusing to run in the root network namespace: start this attack "
                           "inside an emulated host (host.popen / mininet> attacker ...)")


def attack_parser(prog: str, description: str) -> OneLineParser:
    """The parser with the options every attack has: --plan, --targets, --out, --log-level."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("--plan", required=True, type=Path,
                        help="address plan JSON (common.plan.AddressPlan.save)")
    parser.add_argument("--targets", required=True,
                        help="comma-separated IPv4 addresses/CIDRs inside the plan's subnet")
    parser.add_argument("--out", required=True, type=Path,
                        help="outcome JSON file (written atomically at the end)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def load_plan(path: Path) -> AddressPlan:
    """Read an AddressPlan JSON file or raise UserError with a one-line reason."""
    try:
        return AddressPlan.load(path)
    except OSError as exc:
        raise UserError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, PlanError) as exc:
        # json.JSONDecodeError is a ValueError; a missing key is a KeyError.
        raise UserError(f"invalid plan {path}: {type(exc).__name__}: {exc}") from None


def single_target(plan_path: Path, targets_text: str, what: str = "PLC address") -> str:
    """The one address ``--targets`` names; UserError when the plan or scope refuses it or it
    is not exactly one."""
    try:
        targets = expand_targets(load_plan(plan_path), targets_text)
    except ScopeError as exc:
        raise UserError(str(exc)) from None
    if len(targets) != 1:
        raise UserError(f"--targets {targets_text!r}: give exactly one {what}")
    return targets[0]


# --- outcome ----------------------------------------------------------------------------
def utc_now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(kw_only=True)
class AttackOutcome:
    """The fields every attack's outcome JSON has; attacks subclass it to add theirs.

    attack: module name (``recon``).
    parameters: the resolved command-line arguments (paths as strings).
    targets: the in-scope addresses the scope guard expanded the --targets string to.
    started_at, ended_at: UTC ISO 8601 times.
    duration_s: wall time from start to the end of the body.
    interrupted: the run was stopped by SIGTERM/SIGINT; ``interrupt_signal`` names it.
    errors: one-line descriptions of what failed; the run may still have results.
    """

    attack: str
    parameters: dict[str, Any] = field(default_factory=dict)
    targets: list[str]
    started_at: str = field(default_factory=utc_now_iso)
    ended_at: str | None = None
    duration_s: float | None = None
    interrupted: bool = False
    interrupt_signal: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- the run wrapper --------------------------------------------------------------------
@dataclass
class AttackContext:
    """What an attack body gets: its arguments, the plan, the expanded targets, the outcome.

    The body fills ``outcome`` as it goes, so an interrupted run still reports what it found.
    """

    args: argparse.Namespace
    plan: AddressPlan
    targets: tuple[str, ...]
    outcome: AttackOutcome
    started_monotonic_s: float = field(default_factory=time.monotonic)
    stop_signal: int | None = None

    def elapsed_s(self) -> float:
        """Seconds since the attack started (monotonic clock)."""
        return time.monotonic() - self.started_monotonic_s

    @property
    def stop_requested(self) -> bool:
        return self.stop_signal is not None


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(args).items():
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _fail(message: str) -> int:
    sys.stderr.write(message.replace("\n", " ").strip() + "\n")
    sys.stderr.flush()
    return EXIT_USAGE


def run_attack(
    *,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    new_outcome: Callable[[argparse.Namespace, tuple[str, ...]], AttackOutcome],
    body: Callable[[AttackContext], None],
    validate: Callable[[argparse.Namespace], None] | None = None,
    namespace_check: Callable[[], None] = require_host_namespace,
) -> int:
    """Parse, validate, check the namespace, run ``body`` and write the outcome; return the exit.

    parser: built with :func:`attack_parser` (must raise UserError on bad input).
    argv: the arguments without the program name (None: ``sys.argv[1:]``).
    new_outcome: makes the empty outcome from the parsed args and the expanded targets.
    body: the attack; raises nothing on success, may raise anything else on failure.
    validate: extra checks of the parsed args; raises UserError.
    namespace_check: raises HostEnvError outside a host namespace (tests may pass a stub).

    Exit status: 0 done, 1 the body failed (outcome written, errors filled), 2 refused before
    anything was sent (one line on stderr, no outcome), 128+N stopped by signal N.
    """
    try:
        args = parser.parse_args(argv)
        plan = load_plan(args.plan)
        targets = expand_targets(plan, args.targets)
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise UserError(f"--out {args.out}: directory {out_dir} does not exist")
        if not os.access(out_dir, os.W_OK):
            raise UserError(f"--out {args.out}: directory {out_dir} is not writable")
        if validate is not None:
            validate(args)
        namespace_check()
    except (UserError, ScopeError) as exc:
        return _fail(f"{parser.prog}: error: {exc}")

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    outcome = new_outcome(args, targets)
    outcome.parameters = _parameters(args)
    ctx = AttackContext(args=args, plan=plan, targets=targets, outcome=outcome)
    raise_on_signal = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal raise_on_signal
        ctx.stop_signal = ctx.stop_signal or signum
        if raise_on_signal:
            raise_on_signal = False
            raise AttackInterrupted(signum)
        log.warning("%s again: already stopping", signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    status = EXIT_OK
    try:
        try:
            try:
                log.info("%s: %d target address(es), outcome -> %s", parser.prog,
                         len(targets), args.out)
                body(ctx)
            except AttackInterrupted as exc:
                log.warning("%s: %s; writing the outcome", parser.prog, exc)
            except Exception as exc:
                log.exception("%s failed", parser.prog)
                outcome.errors.append(f"{type(exc).__name__}: {exc}")
                status = EXIT_FAILED
        except AttackInterrupted:
            pass  # the signal arrived while a failure was being recorded: still write
        # No more raising from the handler: the outcome must be written whatever arrives now.
        raise_on_signal = False
        if ctx.stop_signal is not None:
            outcome.interrupted = True
            outcome.interrupt_signal = signal.Signals(ctx.stop_signal).name
            status = 128 + ctx.stop_signal
        outcome.ended_at = utc_now_iso()
        outcome.duration_s = round(ctx.elapsed_s(), 6)
        write_json_atomic(args.out, outcome.to_dict())
        log.info("%s: outcome written to %s", parser.prog, args.out)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
