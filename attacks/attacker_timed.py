"""The staged attacker, repeated in timed episodes for the ``mtd-timing`` sweep.

    python -m attacks.attacker_timed --plan PLAN.json --targets 10.0.0.0/24 --out OUT.json \\
        --starts-file STARTS.json --gaps-s 0,1,2,4,8 [--timeout-s 1]

Each episode starts at its time from ``--starts-file`` (a JSON list of unix times, drawn by the
experiment at uniformly random phases of the hop schedule) and is the staged attacker of
``recon``: an nmap SYN scan of 502/tcp over the targets (ARP discovery first, as nmap does on
its own subnet), with ``--packet-trace`` so each open port is timed at its SYN-ACK; then, at
the end of the scan plus each gap of ``--gaps-s``, one Modbus read to every address found
open. The gaps of one episode share its scan (paired); every attempt has its own source port,
so the PLC's request log tells which one reached it. Scans never overlap: an episode whose
start has passed starts when the previous scan ends (its real start is recorded).

Bounds: at most :data:`MAX_EPISODES` episodes, gaps at most :data:`MAX_GAP_S`, each nmap run
at most ``--scan-timeout-s``; targets pass the scope guard.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from attacks.attacker_common import AttackerOutcome, attacker_parser, modbus_attempt
from attacks.recon_parse import ReplyTimes, parse_nmap_xml, parse_packet_trace
from common.errors import UserError
from common.hostenv import AttackContext, run_attack, utc_now_iso
from common.modbus import MODBUS_PORT
from common.scope import require_in_scope

log = logging.getLogger(__name__)

MAX_EPISODES = 1000
MAX_GAP_S = 60.0


def parse_gaps(text: str) -> list[float]:
    """``0,1,2`` → [0.0, 1.0, 2.0] (sorted, unique); ValueError when bad."""
    gaps = sorted({float(x) for x in text.split(",") if x.strip()})
    if not gaps or gaps[0] < 0 or gaps[-1] > MAX_GAP_S:
        raise ValueError(f"gaps must be 0..{MAX_GAP_S:g} s")
    return gaps


def build_parser() -> argparse.ArgumentParser:
    p = attacker_parser("attacks.attacker_timed",
                        "The staged attacker in timed episodes (scan, gaps, exploits).")
    p.add_argument("--starts-file", type=Path, required=True,
                   help="JSON list of unix times, one episode each")
    p.add_argument("--gaps-s", default="0,1,2,4,8",
                   help="recon-to-exploit gaps, seconds after the scan's end")
    p.add_argument("--scan-timeout-s", type=float, default=15.0, help="bound on each scan")
    return p


def _validate(args: argparse.Namespace) -> None:
    try:
        args.gaps = parse_gaps(args.gaps_s)
    except ValueError as exc:
        raise UserError(f"--gaps-s {args.gaps_s}: {exc}") from None
    try:
        starts = json.loads(args.starts_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--starts-file {args.starts_file}: {exc}") from None
    if not isinstance(starts, list) or not 0 < len(starts) <= MAX_EPISODES:
        raise UserError(f"--starts-file: a list of 1..{MAX_EPISODES} unix times")
    args.starts = [float(s) for s in starts]
    if shutil.which("nmap") is None:
        raise UserError("nmap not found on PATH (apt-get install nmap)")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> AttackerOutcome:
    return AttackerOutcome(attack="attacker_timed", model="staged", targets=list(targets),
                           started_at=utc_now_iso())


def scan(ctx: AttackContext, work: Path, episode: int) -> tuple[dict[str, float], float, float]:
    """One nmap SYN scan of 502/tcp: {open address: SYN-ACK unix time}, scan start, scan end."""
    xml_file = work / f"scan_{episode}.xml"
    targets_file = work / "targets.txt"
    if not targets_file.exists():
        targets_file.write_text("\n".join(ctx.targets) + "\n")
    cmd = ["nmap", "-n", "-sS", "-T4", "-p", str(MODBUS_PORT), "--open", "--max-retries", "1",
           "--packet-trace", "-oX", str(xml_file), "-iL", str(targets_file)]
    start = time.time()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             timeout=ctx.args.scan_timeout_s)
        trace = res.stdout
    except subprocess.TimeoutExpired as exc:
        trace = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    end = time.time()
    (work / f"scan_{episode}.trace.txt").write_text(trace)
    times = ReplyTimes.from_trace(parse_packet_trace(trace), start)
    found: dict[str, float] = {}
    if xml_file.exists():
        try:
            run = parse_nmap_xml(xml_file.read_text())
        except ValueError:
            run = None
        for h in run.hosts if run else ():
            if any(p.port == MODBUS_PORT and p.state == "open" for p in h.ports):
                require_in_scope(ctx.plan, h.address)
                found[h.address] = times.port_s(h.address, MODBUS_PORT, end)
    return found, start, end


def _exploit(ctx: AttackContext, lock: threading.Lock, episode: int, gap_s: float,
             found: dict[str, float]) -> None:
    out = ctx.outcome
    assert isinstance(out, AttackerOutcome)
    for address, reply_unix_s in found.items():
        a = modbus_attempt("staged", address, ctx.args.timeout_s, reply_unix_s=reply_unix_s)
        with lock:
            out.attempts.append({**a.to_dict(), "episode": episode, "gap_s": gap_s})


def _body(ctx: AttackContext) -> None:
    out = ctx.outcome
    assert isinstance(out, AttackerOutcome)
    out.attack_start_unix_s = time.time()
    lock = threading.Lock()
    timers: list[threading.Timer] = []
    work = Path(ctx.args.out).parent / "timed_scans"
    work.mkdir(exist_ok=True)
    try:
        for episode, start in enumerate(ctx.args.starts):
            if ctx.stop_requested:
                break
            wait_s = start - time.time()
            if wait_s > 0:
                time.sleep(wait_s)
            found, scan_start, scan_end = scan(ctx, work, episode)
            out.rounds.append({"episode": episode, "planned_unix_s": start,
                               "scan_start_unix_s": scan_start, "scan_end_unix_s": scan_end,
                               "found": [{"address": a, "reply_unix_s": t}
                                         for a, t in sorted(found.items())]})
            for gap_s in ctx.args.gaps:
                t = threading.Timer(max(0.0, scan_end + gap_s - time.time()), _exploit,
                                    (ctx, lock, episode, gap_s, found))
                t.start()
                timers.append(t)
        for t in timers:
            t.join()
    finally:
        for t in timers:
            t.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """0 done (whatever was reached), 2 refused, 128+N stopped by signal N."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())
