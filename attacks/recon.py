"""Staged reconnaissance from inside an emulated host: who is there, what listens, is it Modbus.

Run inside the attacker host::

    python -m attacks.recon --plan PLAN.json --targets 10.0.0.0/24 --out recon.json \\
        [--ports 502,80] [--stages discovery,syn,connect,version,modbus,s7] \\
        [--engine nmap|scapy] [--timeout-s 300] [--stage-timeout-s 60] [--raw-dir DIR]

The default budgets (300 s for the run, 60 s per stage) are for a /24 or smaller; a larger range
gets proportionally more (:func:`scaled_budget_s`: a /22 gets four times as much), because the
discovery sweep grows with the number of addresses (88 s for 1022 addresses on a 2-core machine).

Stages run in the order above, each only on what earlier stages found:

- ``discovery``: ARP/ping sweep of every target (nmap ``-sn -n``; scapy: ARP who-has).
- ``syn``: half-open TCP scan of the live hosts (nmap ``-sS -n -Pn``; scapy: SYN, SYN-ACK = open).
- ``connect``: full TCP connects (nmap ``-sT``; scapy engine: the kernel's ``connect()``).
- ``version``: service versions of the open ports (nmap ``-sV``; scapy engine: banner grab).
- ``modbus``: who answers Modbus on 502/tcp (nmap ``modbus-discover``, bounded by
  ``--script-timeout``/``--host-timeout``; scapy engine: Report Server ID to a few unit ids).
- ``s7``: who answers S7comm on 102/tcp (nmap ``s7-info``: module, firmware, system name;
  the scapy engine skips it).

Without ``discovery`` the later stages take every target as live. Each stage is timed and its
raw output (nmap XML, or the scapy engine's JSON) is saved in ``--raw-dir``. The attacker's own
addresses are never findings. Everything sent goes only to addresses the scope guard returned.

This module is the command line; the stage plan and outcome records are in
:mod:`attacks.recon_run`, the engines in :mod:`attacks.recon_nmap` and :mod:`attacks.recon_scapy`,
the nmap XML parser and the findings in :mod:`attacks.recon_parse`.

What it cannot do: scan UDP, IPv6, or anything outside the plan's subnet; the scapy engine
identifies no service versions beyond a banner's first line.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from attacks.recon_nmap import NmapEngine
from attacks.recon_parse import Findings
from attacks.recon_run import (
    DEFAULT_STAGES,
    STAGES,
    Engine,
    ReconOutcome,
    ReconRun,
    own_interfaces,
    stage,
)
from attacks.recon_scapy import ScapyEngine
from common.cli import choice_list, port_list, positive_float
from common.errors import UserError
from common.hostenv import AttackContext, attack_parser, run_attack, utc_now_iso
from common.modbus import MODBUS_PORT

log = logging.getLogger(__name__)

ENGINE_CLASSES: dict[str, type[Engine]] = {"nmap": NmapEngine, "scapy": ScapyEngine}
ENGINES = tuple(ENGINE_CLASSES)
# Modbus/TCP, HTTP, SSH, Siemens S7 (ISO-TSAP), DNP3, EtherNet/IP: what an ICS scan asks first.
DEFAULT_PORTS = (MODBUS_PORT, 80, 22, 102, 20000, 44818)
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_STAGE_TIMEOUT_S = 60.0
# The default budgets are for this many target addresses (a /24); larger ranges scale them.
BUDGET_ADDRESSES = 256


def scaled_budget_s(base_s: float, n_addresses: int) -> float:
    """``base_s`` for up to :data:`BUDGET_ADDRESSES` targets, proportionally more beyond."""
    return base_s * max(1.0, n_addresses / BUDGET_ADDRESSES)


def _address_key(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def build_parser() -> argparse.ArgumentParser:
    """The recon command line (see the module docstring)."""
    parser = attack_parser("attacks.recon", "Staged reconnaissance from inside an emulated host.")
    parser.add_argument("--ports", type=port_list, default=DEFAULT_PORTS,
                        help="TCP ports, e.g. 502,80,8000-8010 "
                             f"(default {','.join(map(str, DEFAULT_PORTS))})")
    parser.add_argument("--stages", type=choice_list(STAGES), default=DEFAULT_STAGES,
                        help=f"comma-separated subset of {','.join(STAGES)} "
                             f"(default {','.join(DEFAULT_STAGES)})")
    parser.add_argument("--engine", choices=ENGINES, default="nmap")
    parser.add_argument("--timeout-s", type=positive_float, default=None,
                        help="budget for the whole run in seconds (default "
                             f"{DEFAULT_TIMEOUT_S:g} per {BUDGET_ADDRESSES} targets)")
    parser.add_argument("--stage-timeout-s", type=positive_float, default=None,
                        help="budget for one stage; bounds nmap's --host-timeout and "
                             f"--script-timeout (default {DEFAULT_STAGE_TIMEOUT_S:g} per "
                             f"{BUDGET_ADDRESSES} targets)")
    parser.add_argument("--raw-dir", type=Path, default=None,
                        help="folder for each stage's raw output (created if missing)")
    return parser


def _validate(args: argparse.Namespace) -> None:
    if args.raw_dir is not None:
        parent = Path(args.raw_dir).resolve().parent
        if not parent.is_dir():
            raise UserError(f"--raw-dir {args.raw_dir}: parent {parent} does not exist")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> ReconOutcome:
    return ReconOutcome(attack="recon", parameters={}, targets=list(targets),
                        started_at=utc_now_iso(), engine=args.engine)


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    if args.timeout_s is None:
        args.timeout_s = scaled_budget_s(DEFAULT_TIMEOUT_S, len(ctx.targets))
    if args.stage_timeout_s is None:
        args.stage_timeout_s = scaled_budget_s(DEFAULT_STAGE_TIMEOUT_S, len(ctx.targets))
    log.info("recon: %d target(s), budget %.0f s, %.0f s per stage", len(ctx.targets),
             args.timeout_s, args.stage_timeout_s)
    raw_dir = Path(args.raw_dir) if args.raw_dir is not None else None
    if raw_dir is not None:
        raw_dir.mkdir(exist_ok=True)
    own = own_interfaces()
    outcome = ctx.outcome
    assert isinstance(outcome, ReconOutcome)
    outcome.attacker_addresses = sorted(
        (a.split("/")[0] for a in own if not ipaddress.IPv4Interface(a).is_loopback),
        key=_address_key)
    findings = Findings(scope=set(ctx.targets), exclude=set(outcome.attacker_addresses))
    with tempfile.TemporaryDirectory(prefix="recon-") as work_dir:
        run = ReconRun(ctx=ctx, findings=findings, own=own, work_dir=Path(work_dir),
                       raw_dir=raw_dir)
        try:
            engine = ENGINE_CLASSES[args.engine](run)
            outcome.engine_version = engine.version()
            for name in args.stages:
                with stage(run, name) as record:
                    engine.stage_fn(name)(record)
        finally:
            run.sync_findings()
    log.info("recon: %d host(s) found: %s", len(findings.hosts),
             ", ".join(findings.addresses()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run recon; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
