"""The name server the moving-target defense keeps current, run inside one emulated host.

``python -m defenses.nameserver --plan PLAN --listen IP [--hop-log LOG ...]
[--hop-interval-s S] [--jitter-s S] [--max-ttl-s 60] [--allow IP ...] [--query-log JSONL]``

Answers A queries for the PLCs' names (``plc1.ics.lab``, :func:`common.dns.name_for`) over
UDP on ``IP:53``, ``IP`` being the host's own address (never a wildcard): a PLC's current
virtual address from the defense's hop logs (``rhm``'s, or every ``nat`` host's), its real
address when no hop log is given (no defense). The TTL is what is left until the PLC's next
hop can come, at most the hop interval (:func:`common.dns.ttl_s`). The hop logs are re-read
whenever one has grown: the controller and ``nat_hop`` append a record once a hop is in place,
so an answer never names an address before the defense enforces it.

``--allow`` restricts who gets answers (others get REFUSED); without it every client does,
the attacker included. Every answered query is a line of ``--query-log``
(:class:`common.dns.QueryRecord`). ``nameserver ready`` is logged once it listens; SIGTERM
stops it. It refuses to run in the root network namespace.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from common import dns, hoplog, jsonlines
from common.cli import OneLineParser, int_in, positive_float, run_main
from common.errors import UserError
from common.hostenv import load_plan, require_host_namespace
from common.plan import AddressPlan

log = logging.getLogger(__name__)
PROG = "python -m defenses.nameserver"
MAX_DATAGRAM = 4096


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="DNS for the PLCs' current (virtual) addresses.")
    p.add_argument("--plan", type=Path, required=True, help="address plan JSON")
    p.add_argument("--listen", type=dns.ipv4, required=True,
                   help="this host's address in the plan (the only one bound)")
    p.add_argument("--port", type=int_in(1, 65535), default=dns.DNS_PORT)
    p.add_argument("--zone", default=dns.ZONE, help=f"the names' zone (default {dns.ZONE})")
    p.add_argument("--hop-log", type=Path, action="append", default=[],
                   help="a defense's hop log (repeat for nat's per-host logs); none: no "
                        "defense, real addresses")
    p.add_argument("--hop-interval-s", type=positive_float, default=2.0,
                   help="the defense's hop interval (caps the TTL)")
    p.add_argument("--jitter-s", type=float, default=0.0, help="the defense's hop jitter")
    p.add_argument("--max-ttl-s", type=int_in(0, 86400), default=dns.DEFAULT_MAX_TTL_S)
    p.add_argument("--allow", type=dns.ipv4, action="append", default=[],
                   help="only these client addresses get answers (repeatable; default all)")
    p.add_argument("--query-log", type=Path, help="JSON lines, one per query answered")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    return p


def check_args(args: argparse.Namespace, plan: AddressPlan) -> None:
    """UserError when the listen address is not a host of the plan or the jitter is wrong."""
    if plan.by_ip(args.listen) is None:
        raise UserError(f"--listen {args.listen}: not a host address of the plan "
                        f"{plan.name} (the server binds one host's address, never all)")
    if not 0 <= args.jitter_s < args.hop_interval_s:
        raise UserError(f"--jitter-s {args.jitter_s:g}: expected 0 <= jitter < hop interval")
    for client in args.allow:
        if not plan.in_scope(client):
            raise UserError(f"--allow {client}: outside the plan's subnet {plan.subnet}")


class NameTable:
    """The bindings, refreshed from the hop logs whenever one of them changed size."""

    def __init__(self, plan: AddressPlan, hop_logs: Sequence[Path]) -> None:
        self.plan = plan
        self.hop_logs = tuple(hop_logs)
        self._sizes: tuple[int, ...] | None = None
        self.table: dict[str, dns.Binding] = {}

    def current(self) -> dict[str, dns.Binding]:
        sizes = tuple(_size(p) for p in self.hop_logs)
        if sizes != self._sizes:
            self._sizes = sizes
            self.table = dns.bindings(self.plan, hoplog.read(self.hop_logs),
                                      defended=bool(self.hop_logs))
        return self.table


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def serve(sock: socket.socket, names: NameTable, args: argparse.Namespace,
          stop: list[int]) -> dict[str, int]:
    """Answer datagrams until ``stop`` is non-empty; returns counts by rcode."""
    allow = set(args.allow)
    counts: dict[str, int] = {}
    sock.settimeout(0.2)
    while not stop:
        try:
            data, (client_ip, client_port) = sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            continue
        except OSError as exc:  # EINTR on a signal: the loop checks stop
            log.debug("recvfrom: %s", exc)
            continue
        ans = dns.answer(data, names.current(), time.time(), args.hop_interval_s,
                         args.jitter_s, args.max_ttl_s, args.zone, (client_ip, client_port),
                         allowed=not allow or client_ip in allow)
        if ans is None:
            counts["dropped"] = counts.get("dropped", 0) + 1
            continue
        reply, record = ans
        sock.sendto(reply, (client_ip, client_port))
        counts[record.rcode] = counts.get(record.rcode, 0) + 1
        if args.query_log is not None:
            jsonlines.append(args.query_log, record.to_json())
        log.debug("%s", record)
    return counts


def run(args: argparse.Namespace, plan: AddressPlan) -> int:
    stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    names = NameTable(plan, args.hop_log)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((args.listen, args.port))
        except OSError as exc:
            raise UserError(f"cannot listen on {args.listen}:{args.port}: "
                            f"{exc.strerror or exc}") from None
        log.info("nameserver ready on %s:%d zone=%s names=%s defense=%s", args.listen,
                 args.port, args.zone, ",".join(dns.named_hosts(plan)),
                 "hop logs" if args.hop_log else "none (real addresses)")
        counts = serve(sock, names, args, stop)
    log.info("nameserver stopped: %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
             or "no queries")
    return 0


def main(argv: Sequence[str] | None = None, namespace_check: Any = require_host_namespace
         ) -> int:
    """Entry point; ``namespace_check`` raises outside an emulated host (tests stub it)."""

    def body() -> int:
        args = build_parser().parse_args(argv)
        plan = load_plan(args.plan)
        check_args(args, plan)
        namespace_check()
        logging.basicConfig(level=args.log_level, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        return run(args, plan)

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
