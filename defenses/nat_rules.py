"""Pure core of the host-side IP hopping defense (iptables NAT): rules for a state, diffs, schedule.

No I/O here: :mod:`defenses.nat_hop` runs the commands this module writes.

**What a protected host looks like** while the defense runs (``V`` its current virtual address
from the plan's virtual pool, ``R`` its real address):

- ``V/32`` is a secondary address of its interface (label ``<ifname>:nh``), so the kernel
  answers ARP for ``V``; ``nat PREROUTING -d V -j DNAT --to-destination R`` turns each *new*
  conversation to ``V`` into one to ``R`` (the service listens on ``R``/any), and conntrack
  rewrites the replies' source back to ``V`` (the reply path needs no rule).
- The real address is refused to untrusted sources, on both layers:
  IPv4 — ``filter INPUT`` sends packets whose *original* destination was ``R``
  (``-m conntrack --ctorigdst R``, so translated traffic to ``V`` is not caught) to the chain
  ``SDNICS-NAT-HOP``, which RETURNs for each trusted (IP, MAC) pair and DROPs the rest;
  ARP — an nftables ``arp`` table drops ARP requests for ``R`` unless the (sender IP, sender
  MAC) pair is trusted, and drops any ARP the host sends with sender ``R`` to an untrusted
  target; and the trusted peers get permanent neighbour entries (from the plan), so the host
  never *broadcasts* "who has <peer> tell R", which every host on the segment would see.
- Trusted means what the controller defense (:mod:`controllers.rhm_core`) trusts: the plan's
  authorized hosts and the other protected hosts, by (IP, MAC) pair.

**A hop** ``V1 -> V2``: ``V2/32`` is added and its DNAT installed, ``V1``'s DNAT is removed
and a ``filter INPUT -d V1 -j DROP`` installed, in one atomic ``iptables-restore`` per table.
``V1`` then *retires*: conversations that started on it keep their conntrack translation
(their packets reach INPUT with destination ``R``, so the drop rule does not see them), new
ones to ``V1`` are dropped, and ``V1/32`` stays on the interface so that the peers of those
conversations can still resolve it by ARP, until no live conntrack entry uses it or the
grace period ends; then the address and its drop rule go. A new connection request (a TCP
SYN) to ``V1`` is dropped at once whatever its source port, also when conntrack attaches it
to an earlier conversation's entry and so to ``V1``'s old translation (``filter INPUT -d R -p
tcp --syn -m conntrack --ctstate DNAT ! --ctorigdst V2 -j DROP``, :func:`stale_syn_rule`,
swapped with the DNAT at every hop): only conversations established before the hop survive
it.

Every rule carries ``-m comment --comment sdnics-nat-hop``, the chain and nft table carry the
name, addresses the label, neighbour entries protocol 209: a crash clean-up finds exactly
what the defense added (:func:`tagged_iptables_deletions`).

**MACs**: by default ``V`` is not on the interface itself but on an interface of its own
with ``V``'s virtual MAC (:mod:`defenses.nat_links`), so neither ARP answers nor replies show
the real MAC, and the MAC changes with the address at every hop; ``--arp-mac real`` keeps the
older layout (``V`` a labelled secondary address, answered with the real MAC).

What it cannot do: stop a host that forges a trusted host's IP *and* MAC, hide frames the host
sends on its own interface (to trusted hosts, and IPv6 link-local traffic, with the real MAC),
or keep ARP answering for a conversation on a retired address longer than the grace period
(its translation stays, but the peer's ARP entry for ``V1`` may then expire). Only TCP
connection requests are refused at once on a retired address: a UDP datagram or ICMP echo that
conntrack attaches to an earlier entry on ``V1`` (same addresses, ports or echo id, within
conntrack's timeout, 30 s unreplied) still gets that entry's translation (the PLCs of this lab
serve no UDP).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common.hopschedule import (
    HopEvent,
    HopSchedule,
    MutationConfig,
    plan_macs,
    schedule_events,
)
from common.plan import AddressPlan
from defenses.nat_links import MARK_BASE, MARK_MASK, VirtualLink, link_for

TAG = "sdnics-nat-hop"
REFUSE_CHAIN = "SDNICS-NAT-HOP"
ARP_TABLE = "sdnics_nat_hop"
NEIGH_PROTO = 209  # rtnetlink protocol number on the neighbour entries this defense adds
ADDRESS_LABEL_SUFFIX = ":nh"
MAX_LABEL_CHARS = 15  # IFNAMSIZ - 1
BUILTIN_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"})
# TCP states whose peer may still send: the retired address keeps answering ARP for them.
LIVE_TCP_STATES = frozenset({"SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK"})


class NatRuleError(ValueError):
    """The plan or the host cannot be protected this way; ``str()`` is one line."""


@dataclass(frozen=True)
class Peer:
    """A trusted host: may reach the real address. ip, mac: as the plan gives them."""

    name: str
    ip: str
    mac: str


@dataclass(frozen=True)
class ProtectedHost:
    """The host the defense runs in. ifname: its interface on the plan's subnet.

    virtual_macs: each virtual address on its own interface with a virtual MAC
    (:mod:`defenses.nat_links`); False puts it on ``ifname`` (answered with the real MAC).
    subnet: the plan's subnet (the marked replies' route). plan_macs: never used as a
    virtual MAC.
    """

    name: str
    real_ip: str
    ifname: str
    trusted: tuple[Peer, ...]
    virtual_macs: bool = False
    subnet: str = ""
    plan_macs: frozenset[str] = frozenset()

    def link(self, virtual_ip: str) -> VirtualLink:
        """The interface carrying ``virtual_ip`` (with ``virtual_macs``)."""
        return link_for(virtual_ip, self.plan_macs)

    @property
    def address_label(self) -> str:
        """The label of the virtual addresses (``plc1-eth0:nh``); at most 15 characters."""
        return address_label(self.ifname)


def address_label(ifname: str) -> str:
    """``<ifname>:nh``, cut so it fits the kernel's 15 characters (the label must start with
    the interface name, so a long name is shortened from the suffix side)."""
    label = ifname + ADDRESS_LABEL_SUFFIX
    return label if len(label) <= MAX_LABEL_CHARS else ifname[:MAX_LABEL_CHARS]


def trusted_peers(plan: AddressPlan, host_name: str) -> tuple[Peer, ...]:
    """The plan's authorized hosts and the other protected hosts, in plan order."""
    return tuple(Peer(h.name, h.ip, h.mac) for h in plan.hosts
                 if h.name != host_name and (h.authorized or h.protected))


def protected_host(plan: AddressPlan, host_name: str, ifname: str,
                   virtual_macs: bool = True) -> ProtectedHost:
    """The protected host ``host_name`` of ``plan``; NatRuleError when it is not protected.

    virtual_macs: see :class:`ProtectedHost` (``--arp-mac virtual``, the default)."""
    try:
        spec = plan.host(host_name)
    except ValueError as exc:
        raise NatRuleError(str(exc)) from None
    if not spec.protected:
        raise NatRuleError(f"host {host_name} is not protected in the {plan.name} plan "
                           f"(protected: {', '.join(h.name for h in plan.protected) or 'none'})")
    return ProtectedHost(spec.name, spec.ip, ifname, trusted_peers(plan, host_name),
                         virtual_macs, plan.subnet, plan_macs(plan))


# --- schedule ----------------------------------------------------------------------------
def new_schedule(plan: AddressPlan, config: MutationConfig) -> HopSchedule:
    """The controller defense's schedule for ``plan`` (all protected hosts, same seed)."""
    return HopSchedule(plan.protected, plan.virtual_pool, config)


def host_events(plan: AddressPlan, config: MutationConfig, host_name: str, until_s: float
                ) -> list[HopEvent]:
    """One host's assignments and hops up to ``until_s`` (what the controller would give it)."""
    return [e for e in schedule_events(plan, config, until_s) if e.host == host_name]


def check_grace(config: MutationConfig, grace_s: float) -> None:
    """NatRuleError unless an old address leaves its host before the schedule may give it to
    another host (the quarantine): two hosts answering ARP for one address would clash."""
    if not 0 <= grace_s < config.effective_quarantine_s:
        raise NatRuleError(f"grace must be in [0, {config.effective_quarantine_s:g}) s (the "
                           f"schedule's quarantine), got {grace_s:g}")


# --- rules -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One iptables rule. spec: the arguments after the chain, tag comment included."""

    table: str
    chain: str
    spec: tuple[str, ...]

    def __post_init__(self) -> None:
        # iptables-restore splits on blanks and knows only double quotes: keep tokens plain.
        bad = [t for t in self.spec if not t or any(c.isspace() or c in "'\"" for c in t)]
        if bad:
            raise NatRuleError(f"rule token {bad[0]!r} needs quoting")

    @property
    def args(self) -> str:
        return " ".join(self.spec)

    def describe(self) -> str:
        return f"{self.table} {self.chain} {self.args}"

    def add_line(self) -> str:
        """The ``iptables-restore`` line that adds it: inserted first in a built-in chain (ahead
        of the host's own rules), appended in the defense's own chain (order matters there)."""
        verb = "-I" if self.chain in BUILTIN_CHAINS else "-A"
        position = " 1" if verb == "-I" else ""
        return f"{verb} {self.chain}{position} {self.args}"

    def delete_line(self) -> str:
        return f"-D {self.chain} {self.args}"


def _tagged(*args: str) -> tuple[str, ...]:
    """Insert the tag comment before the target (``-j``), as iptables-save prints it."""
    j = args.index("-j")
    return (*args[:j], "-m", "comment", "--comment", TAG, *args[j:])


def refuse_rules(host: ProtectedHost) -> tuple[Rule, ...]:
    """The static rules refusing the real address to untrusted sources (chain contents in
    order, then the jump from INPUT)."""
    rules = [Rule("filter", REFUSE_CHAIN,
                  _tagged("-s", f"{p.ip}/32", "-m", "mac", "--mac-source", p.mac, "-j", "RETURN"))
             for p in host.trusted]
    rules.append(Rule("filter", REFUSE_CHAIN, _tagged("-j", "DROP")))
    rules.append(Rule("filter", "INPUT",
                      _tagged("-d", f"{host.real_ip}/32", "!", "-i", "lo", "-m", "conntrack",
                              "--ctorigdst", host.real_ip, "-j", REFUSE_CHAIN)))
    if host.virtual_macs:
        # Replies of marked conversations carry the mark, so they route out of their
        # virtual address's interface (defenses.nat_links).
        rules.append(Rule("mangle", "OUTPUT",
                          _tagged("-m", "connmark", "--mark", f"{MARK_BASE:#x}/{MARK_MASK:#x}",
                                  "-j", "CONNMARK", "--restore-mark")))
    return tuple(rules)


def dnat_rule(host: ProtectedHost, virtual_ip: str) -> Rule:
    return Rule("nat", "PREROUTING", _tagged("-d", f"{virtual_ip}/32", "-j", "DNAT",
                                             "--to-destination", host.real_ip))


def mark_rule(host: ProtectedHost, virtual_ip: str) -> Rule:
    """New conversations to ``virtual_ip`` get its interface's mark (see
    :mod:`defenses.nat_links`); before the DNAT, so the destination is still virtual."""
    return Rule("mangle", "PREROUTING",
                _tagged("-d", f"{virtual_ip}/32", "-j", "CONNMARK", "--set-mark",
                        f"{host.link(virtual_ip).mark:#x}/{0xFFFFFFFF:#x}"))


def retired_drop_rule(virtual_ip: str) -> Rule:
    """New packets to a retired address (translated ones reach INPUT with the real one)."""
    return Rule("filter", "INPUT", _tagged("-d", f"{virtual_ip}/32", "-j", "DROP"))


def stale_syn_rule(host: ProtectedHost, current: str) -> Rule:
    """A connection request (``--syn``: SYN without ACK, RST or FIN) that conntrack attached to
    the translation of an address other than ``current`` is dropped.

    :func:`retired_drop_rule` only sees packets conntrack did *not* translate. A SYN that
    conntrack matches to an existing entry on a retired address (the same 5-tuple as an
    earlier conversation, in any state conntrack does not reopen as new: an entry whose last
    RST came from the PLC, a half-open one, a live one) keeps that entry's DNAT, reaches INPUT
    with the real address, and would reach the PLC. Packets of established conversations never
    carry a lone SYN, so they are not touched; the rule holds whatever conntrack decides, while
    the address retires and after it left the host (its entries may outlive it), and it is
    swapped with the DNAT at each hop."""
    return Rule("filter", "INPUT",
                _tagged("-d", f"{host.real_ip}/32", "-p", "tcp", "--syn", "-m", "conntrack",
                        "--ctstate", "DNAT", "!", "--ctorigdst", current, "-j", "DROP"))


@dataclass(frozen=True)
class AddrState:
    """Which virtual addresses a host holds. current: the one new conversations get (None
    before the first assignment); retiring: old ones kept for live conversations."""

    current: str | None = None
    retiring: tuple[str, ...] = ()


def after_hop(state: AddrState, new_virtual: str) -> AddrState:
    """The state once ``new_virtual`` is current; the old current one starts retiring.

    A retiring address that comes back (a pool too small for the quarantine) is current again.
    """
    retiring = [a for a in state.retiring if a != new_virtual]
    if state.current is not None and state.current != new_virtual:
        retiring.append(state.current)
    return AddrState(new_virtual, tuple(retiring))


def after_retire(state: AddrState, virtual_ip: str) -> AddrState:
    return AddrState(state.current, tuple(a for a in state.retiring if a != virtual_ip))


def state_rules(host: ProtectedHost, state: AddrState) -> tuple[Rule, ...]:
    """The rules that depend on the addresses held (the static ones: :func:`refuse_rules`)."""
    rules = [dnat_rule(host, state.current), stale_syn_rule(host, state.current)
             ] if state.current else []
    if state.current and host.virtual_macs:
        rules.append(mark_rule(host, state.current))
    rules += [retired_drop_rule(a) for a in state.retiring]
    return tuple(rules)


def state_addresses(state: AddrState) -> tuple[str, ...]:
    """The ``/32`` addresses the interface carries in ``state``."""
    held = ([state.current] if state.current else []) + list(state.retiring)
    return tuple(f"{a}/32" for a in held)


@dataclass(frozen=True)
class Change:
    """What turns one state into another. Addresses are added before the rules that use
    them and removed after (see :mod:`defenses.nat_hop`)."""

    add_rules: tuple[Rule, ...] = ()
    remove_rules: tuple[Rule, ...] = ()
    add_addresses: tuple[str, ...] = ()
    remove_addresses: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.add_rules or self.remove_rules or self.add_addresses
                    or self.remove_addresses)


def _minus(a: Iterable, b: Iterable) -> tuple:
    gone = set(b)
    return tuple(x for x in a if x not in gone)


def diff(host: ProtectedHost, old: AddrState, new: AddrState) -> Change:
    """The rules and addresses to add and remove to go from ``old`` to ``new``, in order."""
    old_rules, new_rules = state_rules(host, old), state_rules(host, new)
    old_addr, new_addr = state_addresses(old), state_addresses(new)
    return Change(_minus(new_rules, old_rules), _minus(old_rules, new_rules),
                  _minus(new_addr, old_addr), _minus(old_addr, new_addr))


def restore_script(add: Sequence[Rule] = (), remove: Sequence[Rule] = (),
                   create_chain: bool = False, delete_chain: bool = False) -> str:
    """``iptables-restore --noflush`` input: one atomic commit per table.

    create_chain / delete_chain: create :data:`REFUSE_CHAIN` before its rules are added, or
    flush and delete it after the jump to it is removed.
    """
    tables: dict[str, list[str]] = {}
    if create_chain:
        tables.setdefault("filter", []).append(f":{REFUSE_CHAIN} - [0:0]")
    for rule in add:
        tables.setdefault(rule.table, []).append(rule.add_line())
    for rule in remove:
        if delete_chain and rule.chain == REFUSE_CHAIN:
            continue  # the flush below removes them
        tables.setdefault(rule.table, []).append(rule.delete_line())
    if delete_chain:
        tables.setdefault("filter", []).extend([f"-F {REFUSE_CHAIN}", f"-X {REFUSE_CHAIN}"])
    lines = []
    for table in sorted(tables):
        lines += [f"*{table}", *tables[table], "COMMIT"]
    return "\n".join(lines) + "\n" if lines else ""


def arp_ruleset(host: ProtectedHost) -> str:
    """``nft -f`` input creating the ARP table (see module doc); never touches other tables."""
    real = host.real_ip
    lines = [f"table arp {ARP_TABLE} {{",
             "  chain input {",
             "    type filter hook input priority 0; policy accept;"]
    if host.trusted:
        pairs = ", ".join(f"{p.ip} . {p.mac}" for p in host.trusted)
        lines.append(f"    arp daddr ip {real} arp saddr ip . arp saddr ether {{ {pairs} }} "
                     "accept")
    lines += [f"    arp daddr ip {real} drop",
              "  }",
              "  chain output {",
              "    type filter hook output priority 0; policy accept;"]
    if host.trusted:
        ips = ", ".join(p.ip for p in host.trusted)
        lines.append(f"    arp saddr ip {real} arp daddr ip != {{ {ips} }} drop")
    else:
        lines.append(f"    arp saddr ip {real} drop")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


# --- crash clean-up and conntrack ---------------------------------------------------------
def tagged_iptables_deletions(save_text: str) -> str:
    """From ``iptables-save`` output, the ``iptables-restore --noflush`` input that removes
    every tagged rule and the defense's chain, and nothing else ("" when there is none)."""
    tables: dict[str, list[str]] = {}
    table = ""
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(f":{REFUSE_CHAIN} "):
            tables.setdefault(table, []).extend([f"-F {REFUSE_CHAIN}", f"-X {REFUSE_CHAIN}"])
        elif line.startswith("-A ") and TAG in line.split():
            chain = line.split()[1]
            if chain != REFUSE_CHAIN:  # flushed with its chain
                tables.setdefault(table, []).insert(0, "-D " + line[3:])
    lines = []
    for name in sorted(tables):
        lines += [f"*{name}", *tables[name], "COMMIT"]
    return "\n".join(lines) + "\n" if lines else ""


def tagged_addresses(ip_addr_json: list[dict]) -> tuple[tuple[str, str], ...]:
    """From parsed ``ip -j addr show``, the (ifname, address/32) pairs carrying the label."""
    found = []
    for link in ip_addr_json:
        ifname = link.get("ifname", "")
        label = address_label(ifname)
        for info in link.get("addr_info", ()):
            if (info.get("family") == "inet" and info.get("prefixlen") == 32
                    and info.get("label") == label and label != ifname):
                found.append((ifname, f"{info.get('local')}/32"))
    return tuple(found)


def tagged_neighbours(neigh_json: list[dict]) -> tuple[tuple[str, str], ...]:
    """From parsed ``ip -j neigh show``, the (dev, ip) entries with :data:`NEIGH_PROTO`."""
    return tuple((n.get("dev", ""), n.get("dst", "")) for n in neigh_json
                 if str(n.get("protocol", "")) in (str(NEIGH_PROTO), hex(NEIGH_PROTO)))


@dataclass(frozen=True)
class ConntrackEntry:
    """One line of ``/proc/net/nf_conntrack``, the fields this defense reads."""

    proto: str
    state: str
    orig_dst: str
    reply_src: str


def parse_conntrack(text: str) -> list[ConntrackEntry]:
    """``/proc/net/nf_conntrack`` text -> entries (IPv4 only; malformed lines skipped)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] != "ipv4":
            continue
        proto = fields[2]
        state = fields[5] if proto == "tcp" and len(fields) > 5 and "=" not in fields[5] else ""
        dsts = [f[4:] for f in fields if f.startswith("dst=")]
        srcs = [f[4:] for f in fields if f.startswith("src=")]
        if len(dsts) < 2 or len(srcs) < 2:
            continue
        out.append(ConntrackEntry(proto, state, dsts[0], srcs[1]))
    return out


def live_flows(entries: Sequence[ConntrackEntry], virtual_ip: str, real_ip: str) -> int:
    """Conversations translated from ``virtual_ip`` to ``real_ip`` whose peer may still send
    (TCP in a live state; UDP/ICMP until conntrack forgets them)."""
    return sum(1 for e in entries
               if e.orig_dst == virtual_ip and e.reply_src == real_ip
               and (e.proto != "tcp" or e.state in LIVE_TCP_STATES))
