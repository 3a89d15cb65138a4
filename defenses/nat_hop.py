"""Host-side moving-target defense: IP hopping simulated with iptables NAT inside a protected host.

Run inside each protected host (the runner starts it with ``host.popen``)::

    python -m defenses.nat_hop --plan PLAN.json --host plc1 --log HOPS.jsonl \\
        [--hop-interval-s 5] [--seed 1] [--jitter-s 0] [--flow-idle-s 10] [--grace-s 20] \\
        [--arp-mac virtual|real] \\
        [--start-epoch-s T] [--duration-s N] [--out SUMMARY.json]
    python -m defenses.nat_hop --cleanup --host plc1      # after a crash: tagged state only

The host gets the virtual addresses the controller defense (:mod:`controllers.rhm_core`) would
give it for the same plan, seed, interval, jitter and flow idle time; the rules, the ARP
refusal and the hop semantics are described in :mod:`defenses.nat_rules`. Processes in several
hosts that get the same ``--start-epoch-s`` (a wall-clock time; the hosts share one kernel
clock) follow one schedule, so no two hosts ever hold one address.

Each hop is appended to ``--log`` as one JSON line (see :class:`common.hoplog.HopRecord`).
``nat_hop ready`` is logged (stderr) once the first address is in place.

On exit (end of ``--duration-s``, SIGTERM, SIGINT) it removes exactly what it added and checks
the host against a snapshot taken first (``iptables-save``, addresses, permanent neighbours,
``nft list ruleset``); ``--out`` gets a summary JSON, written atomically.

Exit status: 0 done and restored, 1 failed or the host differs afterwards, 2 refused before
changing anything (one line on stderr), 128+N stopped by signal N and restored.

What it cannot do: survive SIGKILL with the host clean (``--cleanup`` then removes every tagged
rule, address, neighbour entry and the nft table, but leaves an iptables table that
iptables-nft created empty; the host interface's ``arp_ignore`` stays 1), or hide the real
MAC from trusted hosts (see :mod:`defenses.nat_rules`). Each virtual address answers ARP with
its own virtual MAC (:mod:`defenses.nat_links`; ``--arp-mac real``: the host's MAC).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from common import hoplog
from common.cli import OneLineParser, positive_float
from common.errors import UserError
from common.hoplog import HopRecord
from common.hopschedule import ARP_MAC_CHOICES, HopEvent, MutationConfig, MutationError
from common.hostenv import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    load_plan,
    require_host_namespace,
    write_json_atomic,
)
from common.netstate import (
    NetStateError,
    local_interface,
    read_sysctl,
    run_command,
    write_sysctl,
)
from common.plan import AddressPlan
from defenses import nat_links, nat_rules
from defenses.nat_host import (
    DefenseError,
    HostSnapshot,
    cleanup_tagged,
    conntrack_entries,
    drop_new_empty_tables,
    iptables_restore,
    leftovers,
    nft_apply,
)
from defenses.nat_links import VirtualLink
from defenses.nat_rules import (
    ARP_TABLE,
    NEIGH_PROTO,
    AddrState,
    Change,
    NatRuleError,
    ProtectedHost,
)

log = logging.getLogger(__name__)

PROG = "python -m defenses.nat_hop"
MAX_DURATION_S = 24 * 3600.0  # the runner stops it at the end of a trial; this is a bound
POLL_S = 0.1  # how often the loop looks at signals, due hops and retiring addresses
REQUIRED_TOOLS = ("ip", "iptables", "iptables-save", "iptables-restore", "nft")


# --- the defense ------------------------------------------------------------------------
@dataclass
class Summary:
    """The ``--out`` JSON. restored: the host is as before (differences empty)."""

    host: str
    real_ip: str
    started_unix_s: float
    hops: int = 0
    decision_to_rules_ms: list[float] = field(default_factory=list)
    retired: int = 0
    interrupted: bool = False
    interrupt_signal: str | None = None
    restored: bool = False
    differences: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended_unix_s: float | None = None


class NatHop:
    """The running defense in this namespace: applies hops, retires old addresses, undoes all.

    Changes are recorded before they are made (``_rules``, ``_addresses``...), so
    :meth:`restore` after a failure half-way still removes what may have been added.
    """

    def __init__(self, host: ProtectedHost, hop_log: Path, grace_s: float) -> None:
        self.host = host
        self.hop_log = hop_log
        self.grace_s = grace_s
        self.state = AddrState()
        self.before: HostSnapshot | None = None
        self._rules: list[nat_rules.Rule] = []
        self._addresses: list[str] = []
        self._neighbours: list[str] = []
        self._links: list[VirtualLink] = []
        self._sysctls: dict[str, str] = {}  # path -> value before the defense changed it
        self._chain = False
        self._arp_table = False
        self._retired_at: dict[str, float] = {}  # address -> monotonic time it retired

    # --- set-up and tear-down ----------------------------------------------------------
    def install_static(self) -> None:
        """The real-address refusal: IPv4 chain, ARP table, permanent trusted neighbours."""
        arp_ignore = nat_links.sysctl_path(self.host.ifname, "arp_ignore")
        self.before = HostSnapshot.take([arp_ignore] if self.host.virtual_macs else [])
        if self.host.virtual_macs and read_sysctl(arp_ignore) != nat_links.ARP_IGNORE:
            # Only the virtual address's own interface may answer ARP for it (nat_links).
            self._sysctls[arp_ignore] = read_sysctl(arp_ignore)
            write_sysctl(arp_ignore, nat_links.ARP_IGNORE)
        existing = {n.split()[1] for n in self.before.net.neighbours}
        rules = nat_rules.refuse_rules(self.host)
        self._chain = True
        self._rules += rules
        iptables_restore(nat_rules.restore_script(add=rules, create_chain=True))
        self._arp_table = True
        nft_apply(nat_rules.arp_ruleset(self.host))
        for peer in self.host.trusted:
            if peer.ip in existing:
                continue  # someone's permanent entry: leave it as it is
            self._neighbours.append(peer.ip)
            run_command(["ip", "neigh", "replace", peer.ip, "lladdr", peer.mac, "dev",
                         self.host.ifname, "nud", "permanent", "proto", str(NEIGH_PROTO)])

    def restore(self, summary: Summary) -> None:
        """Undo everything (addresses last: rules that use them go first), then compare."""
        steps: list[tuple[str, Any]] = []
        dynamic = [r for r in self._rules if r.chain != nat_rules.REFUSE_CHAIN]
        script = nat_rules.restore_script(remove=dynamic if self._chain else self._rules,
                                          delete_chain=self._chain)
        steps.append(("iptables rules", lambda: iptables_restore(script)))
        if self._arp_table:
            steps.append(("nft table", lambda: run_command(
                ["nft", "delete", "table", "arp", ARP_TABLE])))
        for ip in self._neighbours:
            steps.append((f"neighbour {ip}", lambda ip=ip: run_command(
                ["ip", "neigh", "del", ip, "dev", self.host.ifname])))
        for cidr in self._addresses:
            steps.append((f"address {cidr}", lambda cidr=cidr: run_command(
                ["ip", "addr", "del", cidr, "dev", self.host.ifname])))
        for link in self._links:
            steps.append((f"interface {link.name}", lambda link=link: self._remove_link(link)))
        for path, value in self._sysctls.items():
            steps.append((path, lambda path=path, value=value: write_sysctl(path, value)))
        failed = []
        for what, step in steps:
            try:
                step()
            except (OSError, NetStateError, DefenseError) as exc:
                failed.append(f"remove {what}: {exc}")
                log.warning("could not remove %s: %s", what, exc)
        if failed:
            # The journal and the host disagree (a step failed half-way): every tagged item
            # in this namespace is ours (the start refused leftovers), so remove by tag.
            try:
                log.warning("removing by tag: %s", ", ".join(cleanup_tagged()) or "nothing")
            except (OSError, NetStateError, DefenseError) as exc:
                summary.errors += [*failed, f"remove by tag: {exc}"]
        self._rules, self._addresses, self._neighbours, self._links = [], [], [], []
        self._sysctls = {}
        self._chain = self._arp_table = False
        if self.before is None:
            summary.restored = not summary.errors
            return
        try:
            drop_new_empty_tables(self.before.net)
            summary.differences = self.before.differences(
                HostSnapshot.take(list(self.before.net.sysctls)))
        except (OSError, NetStateError, DefenseError) as exc:
            summary.differences = [f"could not compare: {exc}"]
        summary.restored = not summary.differences
        if summary.differences:
            log.error("host differs after restore: %s", "; ".join(summary.differences))

    # --- changes -----------------------------------------------------------------------
    def apply(self, new: AddrState) -> Change:
        """Go to ``new``: addresses in, rules swapped atomically, addresses out."""
        change = nat_rules.diff(self.host, self.state, new)
        for cidr in change.add_addresses:
            if self.host.virtual_macs:
                self._add_link(self.host.link(cidr.split("/")[0]))
                continue
            self._addresses.append(cidr)
            run_command(["ip", "addr", "add", cidr, "dev", self.host.ifname, "label",
                         self.host.address_label])
        self._rules += change.add_rules
        iptables_restore(nat_rules.restore_script(add=change.add_rules,
                                                  remove=change.remove_rules))
        self._rules = [r for r in self._rules if r not in change.remove_rules]
        for cidr in change.remove_addresses:
            if self.host.virtual_macs:
                link = self.host.link(cidr.split("/")[0])
                self._remove_link(link)
                self._links.remove(link)
                continue
            run_command(["ip", "addr", "del", cidr, "dev", self.host.ifname])
            self._addresses.remove(cidr)
        self.state = new
        return change

    def _add_link(self, link: VirtualLink) -> None:
        """The virtual address's own interface (recorded first), set up before it comes up."""
        self._links.append(link)
        for argv in nat_links.link_create_commands(link, self.host.ifname):
            run_command(list(argv))
        for path, value in nat_links.link_sysctls(link):
            write_sysctl(path, value)
        for argv in nat_links.link_up_commands(link, self.host.subnet):
            run_command(list(argv))

    @staticmethod
    def _remove_link(link: VirtualLink) -> None:
        for argv in nat_links.link_remove_commands(link):
            run_command(list(argv))

    def hop(self, event: HopEvent, late_ms: float) -> HopRecord:
        """Take one scheduled hop and log it."""
        decided = time.monotonic()
        kept = (nat_rules.live_flows(conntrack_entries(), event.old_virtual, self.host.real_ip)
                if event.old_virtual else 0)
        change = self.apply(nat_rules.after_hop(self.state, event.new_virtual))
        done = time.monotonic()
        if event.old_virtual and event.old_virtual in self.state.retiring:
            self._retired_at[event.old_virtual] = done
        self._retired_at.pop(event.new_virtual, None)
        record = HopRecord(
            time_unix_s=round(time.time(), 6), t_s=round(event.t_s, 6), seq=event.seq,
            host=event.host, real_ip=event.real_ip, old_virtual=event.old_virtual,
            new_virtual=event.new_virtual, kept_flows=kept,
            decision_ms=round((done - decided) * 1000.0, 3), defense=hoplog.NAT,
            rules_installed=len(change.add_rules), rules_removed=len(change.remove_rules),
            addresses_added=len(change.add_addresses), late_ms=round(late_ms, 3),
            rules=tuple(r.describe() for r in change.add_rules))
        hoplog.append(self.hop_log, record)
        log.info("hop seq=%d host=%s old=%s new=%s kept_flows=%d decision_to_rules_ms=%.2f",
                 event.seq, event.host, event.old_virtual, event.new_virtual, kept,
                 record.decision_ms)
        return record

    def retire_idle(self, now_mono: float) -> int:
        """Remove retiring addresses no live conversation uses, or past the grace period."""
        if not self.state.retiring:
            return 0
        entries = conntrack_entries()
        done = 0
        for address in self.state.retiring:
            age_s = now_mono - self._retired_at.get(address, now_mono)
            live = nat_rules.live_flows(entries, address, self.host.real_ip)
            if live and age_s < self.grace_s:
                continue
            self.apply(nat_rules.after_retire(self.state, address))
            self._retired_at.pop(address, None)
            log.info("retired %s after %.1f s (%d live flow(s) left)", address, age_s, live)
            done += 1
        return done


# --- command line ------------------------------------------------------------------------
def build_parser() -> OneLineParser:
    d = MutationConfig()
    p = OneLineParser(prog=PROG, description="IP hopping with iptables NAT inside a "
                             "protected host (see the module documentation)")
    p.add_argument("--plan", type=Path, help="address plan JSON (AddressPlan.save)")
    p.add_argument("--host", required=True, help="this host's name in the plan (protected)")
    p.add_argument("--log", type=Path, help="hop log, one JSON line per hop (appended)")
    p.add_argument("--hop-interval-s", type=positive_float, default=d.hop_interval_s,
                   help=f"seconds between address changes (default {d.hop_interval_s:g})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"schedule seed (default {d.seed})")
    p.add_argument("--jitter-s", "--jitter", dest="jitter_s", type=float, default=d.jitter_s,
                   help="each interval is hop-interval +/- up to this (default 0)")
    p.add_argument("--flow-idle-s", type=int, default=d.flow_idle_timeout_s,
                   help="the controller defense's flow idle time; sets the schedule's "
                        f"quarantine, so use the same value (default {d.flow_idle_timeout_s})")
    p.add_argument("--arp-mac", choices=ARP_MAC_CHOICES, default=d.arp_mac,
                   help="MAC of the virtual addresses: virtual (one per address, on its own "
                        "interface) or real (the host's own; before issue 15) (default "
                        f"{d.arp_mac})")
    p.add_argument("--grace-s", type=float, default=None,
                   help="longest time an old address keeps answering for live conversations "
                        "(default 2 x flow-idle-s, below the quarantine)")
    p.add_argument("--start-epoch-s", type=float, default=None,
                   help="schedule time zero, Unix seconds; give every host the same (default now)")
    p.add_argument("--duration-s", type=positive_float, default=MAX_DURATION_S,
                   help=f"stop after this long (default and maximum {MAX_DURATION_S:g})")
    p.add_argument("--out", type=Path, default=None, help="summary JSON, written at the end")
    p.add_argument("--cleanup", action="store_true",
                   help="remove tagged rules, addresses, neighbours and the nft table, then exit")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


@dataclass(frozen=True)
class Resolved:
    args: argparse.Namespace
    plan: AddressPlan
    config: MutationConfig
    grace_s: float


def resolve(args: argparse.Namespace) -> Resolved:
    """Check the options that need no host; UserError with one line."""
    if args.plan is None or args.log is None:
        raise UserError("--plan and --log are required (unless --cleanup)")
    if args.duration_s > MAX_DURATION_S:
        raise UserError(f"--duration-s must be at most {MAX_DURATION_S:g}")
    if args.start_epoch_s is not None and not math.isfinite(args.start_epoch_s):
        raise UserError("--start-epoch-s must be a finite number")
    plan = load_plan(args.plan)
    try:
        config = MutationConfig(hop_interval_s=args.hop_interval_s, jitter_s=args.jitter_s,
                                seed=args.seed, flow_idle_timeout_s=args.flow_idle_s,
                                arp_mac=args.arp_mac)
        nat_rules.new_schedule(plan, config)
        grace_s = (args.grace_s if args.grace_s is not None
                   else min(2.0 * config.flow_idle_timeout_s,
                            config.effective_quarantine_s / 2))
        nat_rules.check_grace(config, grace_s)
        nat_rules.protected_host(plan, args.host, "-")
    except (MutationError, NatRuleError) as exc:
        raise UserError(str(exc)) from None
    log_dir = args.log.resolve().parent
    for path, what in ((log_dir, "--log"), (args.out.resolve().parent if args.out else None,
                                             "--out")):
        if path is not None and not (path.is_dir() and os.access(path, os.W_OK)):
            raise UserError(f"{what}: directory {path} does not exist or is not writable")
    return Resolved(args, plan, config, grace_s)


def check_host(plan: AddressPlan, host_name: str, virtual_macs: bool = True) -> ProtectedHost:
    """Tools present, this namespace is ``host_name``, no earlier run's state: UserError."""
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise UserError(f"missing {', '.join(missing)} (apt-get install iproute2 iptables "
                         "nftables)")
    try:
        intf = local_interface(plan.network)
    except NetStateError as exc:
        raise UserError(str(exc)) from None
    real_ip = plan.host(host_name).ip
    if intf.ip != real_ip:
        raise UserError(f"this namespace's address is {intf.ip}, not {host_name}'s "
                         f"{real_ip}: start it inside {host_name}")
    found = leftovers()
    if found:
        raise UserError(f"{', '.join(found)} of an earlier nat_hop are here: run {PROG} "
                         f"--cleanup --host {host_name} first")
    return nat_rules.protected_host(plan, host_name, intf.name, virtual_macs)


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}".replace("\n", " ").strip() + "\n")
    return EXIT_USAGE


def run(res: Resolved, host: ProtectedHost) -> int:
    """The defense's life: set up, hop until the end or a signal, restore."""
    args = res.args
    start_epoch_s = args.start_epoch_s if args.start_epoch_s is not None else time.time()
    # Schedule time zero on the monotonic clock (the wall clock only places it once).
    zero_mono = time.monotonic() - (time.time() - start_epoch_s)
    end_mono = time.monotonic() + args.duration_s
    summary = Summary(host.name, host.real_ip, round(time.time(), 6))
    stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop:
            log.info("%s: stopping", signal.Signals(signum).name)
        stop.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    defense = NatHop(host, args.log, res.grace_s)
    schedule = nat_rules.new_schedule(res.plan, res.config)
    status = EXIT_OK
    try:
        defense.install_static()
        for event in schedule.initial:
            if event.host == host.name:
                defense.hop(event, 0.0)
        log.info("nat_hop ready host=%s real=%s virtual=%s", host.name, host.real_ip,
                 defense.state.current)
        # Bounded: each pass sleeps POLL_S or less, and the end is at most MAX_DURATION_S away.
        max_passes = int(args.duration_s / POLL_S) + 10_000
        for _ in range(max_passes):
            now = time.monotonic()
            if stop or now >= end_mono:
                break
            for event in schedule.pop_due(now - zero_mono):
                if event.host == host.name:
                    late_ms = (time.monotonic() - zero_mono - event.t_s) * 1000.0
                    summary.decision_to_rules_ms.append(
                        defense.hop(event, late_ms).decision_ms or 0.0)
                    summary.hops += 1
            summary.retired += defense.retire_idle(time.monotonic())
            wake = min(zero_mono + schedule.next_due_s, end_mono, time.monotonic() + POLL_S)
            time.sleep(max(0.0, wake - time.monotonic()))
    except (OSError, NetStateError, DefenseError) as exc:
        log.error("nat_hop failed: %s", exc)
        summary.errors.append(f"{type(exc).__name__}: {exc}")
        status = EXIT_FAILED
    finally:
        # A second signal now only sets the flag: the host must be restored whatever comes.
        defense.restore(summary)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop:
        summary.interrupted = True
        summary.interrupt_signal = signal.Signals(stop[0]).name
    summary.ended_unix_s = round(time.time(), 6)
    if args.out is not None:
        write_json_atomic(args.out, asdict(summary))
    log.info("nat_hop stopped host=%s hops=%d restored=%s", host.name, summary.hops,
             summary.restored)
    if not summary.restored:
        return EXIT_FAILED
    return 128 + stop[0] if stop and status == EXIT_OK else status


def main(argv: Sequence[str] | None = None,
         namespace_check: Any = require_host_namespace) -> int:
    """Entry point; ``namespace_check`` raises HostEnvError outside a host (tests stub it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.cleanup:
            res = resolve(args)
        namespace_check()
    except UserError as exc:
        return _fail(str(exc))
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.cleanup:
        try:
            removed = cleanup_tagged()
        except (OSError, NetStateError, DefenseError) as exc:
            sys.stderr.write(f"{PROG}: cleanup failed: {exc}\n")
            return EXIT_FAILED
        sys.stdout.write(f"{args.host}: removed {', '.join(removed) or 'nothing'}\n")
        return EXIT_OK
    try:
        host = check_host(res.plan, args.host, res.config.arp_mac == "virtual")
    except (UserError, NetStateError, NatRuleError) as exc:
        return _fail(str(exc))
    return run(res, host)


if __name__ == "__main__":
    sys.exit(main())
