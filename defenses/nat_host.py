"""The host side of :mod:`defenses.nat_hop`: the commands that read and change a protected
host's network state (iptables, nft, addresses, neighbours, conntrack), and the snapshot
taken before the defense changes anything.

Everything here runs commands in the current network namespace; the rules themselves are
built by the pure :mod:`defenses.nat_rules`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.netstate import (
    NetSnapshot,
    diff_snapshots,
    iptables_backend_is_nft,
    parse_iptables_save,
    run_command,
    table_has_rules,
    take_snapshot,
)
from defenses import nat_links, nat_rules
from defenses.nat_rules import ARP_TABLE

CONNTRACK_PATH = Path("/proc/net/nf_conntrack")


class DefenseError(RuntimeError):
    """A command that changes the host failed while the defense ran."""


def iptables_restore(script: str) -> None:
    """Apply ``iptables-restore --noflush`` input (atomic per table)."""
    if not script:
        return
    _run_input(["iptables-restore", "-w", "--noflush"], script)


def nft_apply(script: str) -> None:
    _run_input(["nft", "-f", "-"], script)


def _run_input(argv: Sequence[str], text: str) -> None:
    try:
        done = subprocess.run(list(argv), input=text, capture_output=True, text=True,
                              timeout=10.0, check=False)
    except subprocess.TimeoutExpired:
        raise DefenseError(f"{' '.join(argv)} did not finish within 10 s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if not ln.startswith("Try `")]
        raise DefenseError(f"{' '.join(argv)}: {'; '.join(lines) or f'exit {done.returncode}'}")


def nft_ruleset() -> str:
    return run_command(["nft", "list", "ruleset"])


def conntrack_entries() -> list[nat_rules.ConntrackEntry]:
    """This namespace's conntrack table ([] where the kernel has no procfs view of it)."""
    try:
        return nat_rules.parse_conntrack(CONNTRACK_PATH.read_text())
    except OSError:
        return []


def leftovers() -> list[str]:
    """Descriptions of tagged state already in this namespace (an earlier run's)."""
    found = []
    if nat_rules.tagged_iptables_deletions(run_command(["iptables-save"])):
        found.append("iptables rules")
    if f"table arp {ARP_TABLE}" in nft_ruleset():
        found.append(f"nft table arp {ARP_TABLE}")
    if nat_rules.tagged_addresses(json.loads(run_command(["ip", "-j", "addr", "show"]) or "[]")):
        found.append("addresses")
    if nat_rules.tagged_neighbours(json.loads(run_command(["ip", "-j", "neigh", "show"]) or "[]")):
        found.append("neighbour entries")
    if nat_links.tagged_links(_json(["ip", "-j", "-d", "link", "show"])):
        found.append("virtual-MAC interfaces")
    if nat_links.tagged_rules(_json(["ip", "-j", "rule", "show"])):
        found.append("policy rules")
    return found


def _json(argv: list[str]) -> list[dict]:
    return json.loads(run_command(argv) or "[]")


def cleanup_tagged() -> list[str]:
    """Remove every tagged rule, address, neighbour entry, policy rule, virtual-MAC interface
    and the nft table; say what went. (The host interface's ``arp_ignore`` stays 1: its value
    before the crash is not known, and 1 only narrows which interface answers ARP.)"""
    removed = []
    script = nat_rules.tagged_iptables_deletions(run_command(["iptables-save"]))
    if script:
        iptables_restore(script)
        removed.append(f"{sum(1 for ln in script.splitlines() if ln.startswith('-D'))} "
                       "iptables rule(s)" + (" and chain " + nat_rules.REFUSE_CHAIN
                                             if "-X" in script else ""))
    if f"table arp {ARP_TABLE}" in nft_ruleset():
        run_command(["nft", "delete", "table", "arp", ARP_TABLE])
        removed.append(f"nft table arp {ARP_TABLE}")
    for ifname, cidr in nat_rules.tagged_addresses(
            json.loads(run_command(["ip", "-j", "addr", "show"]) or "[]")):
        run_command(["ip", "addr", "del", cidr, "dev", ifname])
        removed.append(f"address {cidr} on {ifname}")
    for dev, ip in nat_rules.tagged_neighbours(
            json.loads(run_command(["ip", "-j", "neigh", "show"]) or "[]")):
        run_command(["ip", "neigh", "del", ip, "dev", dev])
        removed.append(f"neighbour {ip} on {dev}")
    for mark in nat_links.tagged_rules(_json(["ip", "-j", "rule", "show"])):
        run_command(["ip", "rule", "del", "fwmark", mark, "lookup", str(int(mark, 0))])
        removed.append(f"policy rule fwmark {mark}")
    for name in nat_links.tagged_links(_json(["ip", "-j", "-d", "link", "show"])):
        run_command(["ip", "link", "del", name])
        removed.append(f"interface {name}")
    return removed


@dataclass
class HostSnapshot:
    """The host before the defense changed it: netstate's snapshot plus the nft ruleset."""

    net: NetSnapshot
    nft: str

    @classmethod
    def take(cls, sysctls: Sequence[str] = ()) -> HostSnapshot:
        """sysctls: the /proc/sys paths the defense changes (compared too)."""
        return cls(take_snapshot(sysctls), nft_ruleset())

    def differences(self, after: HostSnapshot) -> list[str]:
        out = diff_snapshots(self.net, after.net)
        if self.nft != after.nft:
            out.append("nft ruleset changed")
        return out


def drop_new_empty_tables(before: NetSnapshot) -> None:
    """iptables-nft creates ``nat``/``filter`` on first use and keeps them empty: delete the
    ones that did not exist before and hold nothing, so ``iptables-save`` is as before."""
    now = parse_iptables_save(run_command(["iptables-save"]))
    if not iptables_backend_is_nft():
        return
    for table in (t for t in now if t not in before.iptables):
        if not table_has_rules(now[table]):
            run_command(["nft", "delete", "table", "ip", table])
