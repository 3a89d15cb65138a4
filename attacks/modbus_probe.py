"""The exploit step of a reconnaissance: can the attacker still talk Modbus to what it found?

    python -m attacks.modbus_probe --plan PLAN.json --targets 10.0.0.21,10.0.0.104 \\
        --out OUT.json [--port 502] [--timeout-s 1.0]

For each target: a TCP connect to the port, then one harmless read (function 4, input
register 0 — the process id in this project's PLCs). A target counts as exploited when a
well-formed Modbus reply comes back (an exception reply included: the attacker reached a
Modbus server that answers it). One attempt per target, each bounded by ``--timeout-s``.
The source address and port of each connection and its start and end times are recorded,
so the experiment can find the request in the PLC's own request log.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.cli import positive_float
from common.hostenv import AttackContext, AttackOutcome, attack_parser, run_attack, utc_now_iso
from common.modbus import (
    MODBUS_PORT,
    READ_INPUT_REGISTERS,
    FrameError,
    Reply,
    parse_reply,
    read_request,
    recv_adu,
)

# Input register 0 holds the process id in every map of plc.registers (a test checks it).
PROCESS_ID_ADDRESS = 0


@dataclass
class ModbusProbeOutcome(AttackOutcome):
    """results: one per target: address, reached (bool), stage reached, latency_ms, error."""

    port: int = MODBUS_PORT
    results: list[dict[str, Any]] = field(default_factory=list)
    reached: int = 0


def probe_request(transaction_id: int = 1) -> bytes:
    """The one harmless read every exploit check sends: function 4, input register
    :data:`PROCESS_ID_ADDRESS`, one register."""
    return read_request(transaction_id, READ_INPUT_REGISTERS, PROCESS_ID_ADDRESS, 1)


def read_probe_reply(sock: socket.socket) -> Reply:
    """The reply to :func:`probe_request` (an exception reply included); raises OSError or
    FrameError when none comes back whole."""
    return parse_reply(recv_adu(sock, "connection closed by peer"))


def probe(address: str, port: int, timeout_s: float) -> dict[str, Any]:
    """One connect + read; never raises."""
    t0 = time.monotonic()
    result: dict[str, Any] = {"address": address, "reached": False, "stage": "connect",
                              "latency_ms": None, "error": "", "values": [], "src_ip": "",
                              "src_port": 0, "started_unix_s": time.time()}
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as sock:
            result["src_ip"], result["src_port"] = sock.getsockname()[:2]
            sock.settimeout(timeout_s)
            result["stage"] = "request"
            sock.sendall(probe_request())
            reply = read_probe_reply(sock)
            result.update(reached=True, stage="reply", values=list(reply.values),
                          exception_code=reply.exception_code)
    except (OSError, FrameError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["latency_ms"] = round((time.monotonic() - t0) * 1000.0, 3)
    result["ended_unix_s"] = time.time()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = attack_parser("attacks.modbus_probe", "One Modbus read per target (exploit check).")
    p.add_argument("--port", type=int, default=MODBUS_PORT)
    p.add_argument("--timeout-s", type=positive_float, default=1.0)
    return p


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> ModbusProbeOutcome:
    return ModbusProbeOutcome(attack="modbus_probe", parameters={}, targets=list(targets),
                              started_at=utc_now_iso(), port=args.port)


def _body(ctx: AttackContext) -> None:
    out = ctx.outcome
    assert isinstance(out, ModbusProbeOutcome)
    for address in ctx.targets:
        if ctx.stop_requested:
            break
        out.results.append(probe(address, ctx.args.port, min(ctx.args.timeout_s, 10.0)))
    out.reached = sum(1 for r in out.results if r["reached"])


def main(argv: Sequence[str] | None = None) -> int:
    """0 done (whatever was reached), 2 refused, 128+N stopped by signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body)


if __name__ == "__main__":
    raise SystemExit(main())
