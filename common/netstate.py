"""Snapshot, change and restore an emulated host's network state (run inside its namespace).

Attacks that change their host (an ARP-spoofing MITM turns on ``ip_forward`` and adds a
FORWARD rule; IP hopping adds addresses and SNAT rules) make every change through a
:class:`HostChanges` journal, which undoes the changes in reverse order on exit and then
compares the host with the :class:`NetSnapshot` taken before the first change.

What is captured: the iptables rule sets (``iptables-save``, counters and comments dropped),
the IPv4 addresses of every interface, the sysctls the attack touched, and the permanent
neighbour entries. An iptables table that did not exist before (iptables-nft creates
``nat`` on first use and keeps it, empty, after the last rule is deleted) is deleted again
with ``nft`` when it is empty, so ``iptables-save`` is byte-for-byte as before.

What it cannot do: undo conntrack entries (they expire on their own), other hosts' ARP
caches (an attack restores those itself), or changes made by another process meanwhile (the
final comparison reports them as differences, it does not revert them).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 10.0
SYSCTL_ROOT = Path("/proc/sys")
IP_FORWARD = "net/ipv4/ip_forward"

_COUNTERS = re.compile(r"\[\d+:\d+\]")


class NetStateError(RuntimeError):
    """A command that reads or changes the host's network state failed."""


# --- pure parsing -----------------------------------------------------------------------
def parse_iptables_save(text: str) -> dict[str, str]:
    """``iptables-save`` output -> {table: its lines}, counters zeroed, comments dropped.

    A table absent from the output (never used under iptables-nft) is absent from the dict,
    so "no table" and "an empty table" stay distinguishable.
    """
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
            continue
        if current is None:
            continue
        current.append(_COUNTERS.sub("[0:0]", line))
    return {name: "\n".join(lines) for name, lines in tables.items()}


def table_has_rules(table_text: str) -> bool:
    """True when a parsed table holds a rule (``-A``) or a user chain, not only base chains."""
    for line in table_text.splitlines():
        if line.startswith("-A "):
            return True
        if line.startswith(":") and line.split()[1] not in ("ACCEPT", "DROP"):
            return True  # a user-defined chain has policy "-"
    return False


def parse_ip_addr_json(text: str) -> tuple[str, ...]:
    """``ip -j addr show`` -> sorted ``ifname family address/prefix`` strings."""
    out = []
    for link in json.loads(text or "[]"):
        for info in link.get("addr_info", ()):
            out.append(f"{link.get('ifname')} {info.get('family')} "
                       f"{info.get('local')}/{info.get('prefixlen')}")
    return tuple(sorted(out))


def parse_permanent_neigh_json(text: str) -> tuple[str, ...]:
    """``ip -j neigh show nud permanent`` -> sorted ``dev ip lladdr`` strings."""
    out = []
    for entry in json.loads(text or "[]"):
        out.append(f"{entry.get('dev')} {entry.get('dst')} {entry.get('lladdr', '')}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class NetSnapshot:
    """What a host's network state looked like at one moment.

    iptables: table name -> normalised ``iptables-save`` lines (see parse_iptables_save).
    addresses: ``ifname family address/prefix`` strings.
    sysctls: path under /proc/sys -> value, for the sysctls asked for.
    neighbours: permanent neighbour entries.
    """

    iptables: dict[str, str]
    addresses: tuple[str, ...]
    sysctls: dict[str, str] = field(default_factory=dict)
    neighbours: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"iptables": dict(self.iptables), "addresses": list(self.addresses),
                "sysctls": dict(self.sysctls), "neighbours": list(self.neighbours)}


def diff_snapshots(before: NetSnapshot, after: NetSnapshot) -> list[str]:
    """One line per difference between two snapshots; empty when the host is as before."""
    out: list[str] = []
    for table in sorted(set(before.iptables) | set(after.iptables)):
        old, new = before.iptables.get(table), after.iptables.get(table)
        if old == new:
            continue
        if old is None:
            out.append(f"iptables table {table} was created")
        elif new is None:
            out.append(f"iptables table {table} was removed")
        else:
            gone = sorted(set(old.splitlines()) - set(new.splitlines()))
            added = sorted(set(new.splitlines()) - set(old.splitlines()))
            out.append(f"iptables table {table} changed: +{added} -{gone}")
    for addr in sorted(set(after.addresses) - set(before.addresses)):
        out.append(f"address added: {addr}")
    for addr in sorted(set(before.addresses) - set(after.addresses)):
        out.append(f"address removed: {addr}")
    for key in sorted(set(before.sysctls) | set(after.sysctls)):
        if before.sysctls.get(key) != after.sysctls.get(key):
            out.append(f"sysctl {key}: {before.sysctls.get(key)} -> {after.sysctls.get(key)}")
    for entry in sorted(set(after.neighbours) ^ set(before.neighbours)):
        out.append(f"permanent neighbour changed: {entry}")
    return out


# --- I/O --------------------------------------------------------------------------------
def run_command(argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S) -> str:
    """Run a command, return its stdout; NetStateError with its last stderr line on failure."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise NetStateError(f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise NetStateError(f"{' '.join(argv)} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise NetStateError(f"{' '.join(argv)}: {last}")
    return done.stdout


@dataclass(frozen=True)
class LocalInterface:
    """This namespace's interface on a subnet: its name, IPv4 address and MAC."""

    name: str
    ip: str
    mac: str


def find_interface(link_json: str, network: ipaddress.IPv4Network) -> LocalInterface | None:
    """From ``ip -j addr show`` text, the interface whose primary address is in ``network``.

    Only an address with the network's own prefix length counts, so a /32 added by an
    attack (iphop) is never taken for the host's real address.
    """
    for link in json.loads(link_json or "[]"):
        for info in link.get("addr_info", ()):
            if info.get("family") != "inet" or info.get("prefixlen") != network.prefixlen:
                continue
            if ipaddress.IPv4Address(info.get("local", "0.0.0.0")) in network:
                return LocalInterface(link["ifname"], info["local"], link.get("address", ""))
    return None


def local_interface(network: ipaddress.IPv4Network) -> LocalInterface:
    """This namespace's interface on ``network``; NetStateError when there is none."""
    found = find_interface(run_command(["ip", "-j", "addr", "show"]), network)
    if found is None:
        raise NetStateError(f"no interface with an address in {network}: is this an emulated "
                            "host of this plan?")
    return found


def read_sysctl(path: str) -> str:
    """The value of ``/proc/sys/<path>`` (``net/ipv4/ip_forward``), stripped."""
    return (SYSCTL_ROOT / path).read_text().strip()


def write_sysctl(path: str, value: str) -> None:
    """Set ``/proc/sys/<path>``; the write goes to this process's network namespace."""
    (SYSCTL_ROOT / path).write_text(f"{value}\n")


def iptables_backend_is_nft() -> bool:
    """True when ``iptables`` is the nf_tables variant (its tables are nft tables)."""
    try:
        return "nf_tables" in run_command(["iptables", "-V"])
    except NetStateError:
        return False


def take_snapshot(sysctls: Sequence[str] = ()) -> NetSnapshot:
    """Read this namespace's iptables, addresses, the given sysctls and permanent neighbours."""
    return NetSnapshot(
        iptables=parse_iptables_save(run_command(["iptables-save"])),
        addresses=parse_ip_addr_json(run_command(["ip", "-j", "addr", "show"])),
        sysctls={path: read_sysctl(path) for path in sysctls},
        neighbours=parse_permanent_neigh_json(
            run_command(["ip", "-j", "neigh", "show", "nud", "permanent"])),
    )


def snapshot_host() -> NetSnapshot | None:
    """This namespace's network state, or None (logged) where the tools to read it are missing.

    What an attack that must change nothing on its host takes before it starts.
    """
    try:
        return take_snapshot()
    except NetStateError as exc:
        log.warning("cannot snapshot the host's network state: %s", exc)
        return None


def host_state_diff(before: NetSnapshot | None) -> list[str]:
    """Differences of the network state now vs. ``before`` (a line each; [] = same)."""
    if before is None:
        return ["not checked: no snapshot before the attack"]
    after = snapshot_host()
    return diff_snapshots(before, after) if after is not None else ["not checked after"]


@dataclass
class Change:
    """One change made to the host; ``undo`` reverts it."""

    description: str
    undo: Callable[[], None]
    key: tuple[str, ...] = ()


class HostChanges:
    """A journal of changes to this namespace, undone in reverse order by :meth:`restore`.

    Every change is recorded *before* it is made, so a failure half-way (or a signal)
    still gets undone. Use as a context manager or call :meth:`restore` in a ``finally``.
    """

    def __init__(self, sysctls: Sequence[str] = ()) -> None:
        self.before = take_snapshot(sysctls)
        self._sysctl_paths = tuple(sysctls)
        self._changes: list[Change] = []
        self.restored = False
        self.errors: list[str] = []
        self.differences: list[str] = []

    def __enter__(self) -> HostChanges:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    @property
    def descriptions(self) -> list[str]:
        return [c.description for c in self._changes]

    def set_sysctl(self, path: str, value: str) -> None:
        """Set a sysctl; its value from before is written back on restore."""
        old = read_sysctl(path)
        if old == value:
            return
        self._changes.append(Change(f"sysctl {path}={value} (was {old})",
                                    lambda: write_sysctl(path, old)))
        write_sysctl(path, value)

    def iptables_insert(self, table: str, chain: str, rule: Sequence[str],
                        position: int = 1) -> None:
        """``iptables -t table -I chain position rule``; undone with ``-D chain rule``."""
        spec = list(rule)
        self._changes.append(Change(
            f"iptables -t {table} -I {chain} {position} {' '.join(spec)}",
            lambda: run_command(["iptables", "-w", "-t", table, "-D", chain, *spec]),
            key=("iptables", table, chain, *spec)))
        run_command(["iptables", "-w", "-t", table, "-I", chain, str(position), *spec])

    def iptables_delete(self, table: str, chain: str, rule: Sequence[str]) -> None:
        """Delete a rule this journal inserted, now rather than at restore."""
        spec = list(rule)
        key = ("iptables", table, chain, *spec)
        for i in range(len(self._changes) - 1, -1, -1):
            if self._changes[i].key == key:
                run_command(["iptables", "-w", "-t", table, "-D", chain, *spec])
                del self._changes[i]
                return
        raise NetStateError(f"no rule {' '.join(spec)} in {table}/{chain} made by this journal")

    def add_address(self, ifname: str, cidr: str) -> None:
        """``ip addr add cidr dev ifname``; undone with ``ip addr del``."""
        self._changes.append(Change(
            f"ip addr add {cidr} dev {ifname}",
            lambda: run_command(["ip", "addr", "del", cidr, "dev", ifname]),
            key=("addr", ifname, cidr)))
        run_command(["ip", "addr", "add", cidr, "dev", ifname])

    def has_address(self, ifname: str, cidr: str) -> bool:
        """True when this journal added ``cidr`` on ``ifname`` and has not undone it."""
        return any(c.key == ("addr", ifname, cidr) for c in self._changes)

    def restore(self) -> list[str]:
        """Undo every change (newest first), drop tables that are new and empty, compare.

        Returns the differences from the snapshot taken before the first change (empty when
        the host is exactly as before); errors of individual undo steps are in ``errors``.
        Idempotent: a second call only re-compares.
        """
        while self._changes:
            change = self._changes.pop()
            try:
                change.undo()
                log.debug("undone: %s", change.description)
            except (OSError, NetStateError) as exc:
                self.errors.append(f"undo {change.description}: {exc}")
                log.error("could not undo %s: %s", change.description, exc)
        try:
            self._drop_new_empty_tables()
            after = take_snapshot(self._sysctl_paths)
            self.differences = diff_snapshots(self.before, after)
        except (OSError, NetStateError) as exc:
            self.errors.append(f"final comparison: {exc}")
            self.differences = [f"could not compare: {exc}"]
        self.restored = not self.differences and not self.errors
        if self.differences:
            log.error("host network state differs after restore: %s",
                      "; ".join(self.differences))
        return self.differences

    def _drop_new_empty_tables(self) -> None:
        now = parse_iptables_save(run_command(["iptables-save"]))
        new_tables = [t for t in now if t not in self.before.iptables]
        if not new_tables:
            return
        if not iptables_backend_is_nft() or shutil.which("nft") is None:
            return  # legacy iptables: tables always exist, nothing to drop
        for table in new_tables:
            if table_has_rules(now[table]):
                self.errors.append(f"iptables table {table} is new and not empty: kept")
                continue
            run_command(["nft", "delete", "table", "ip", table])
            log.debug("deleted the empty iptables table %s it created", table)
