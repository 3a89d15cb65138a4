"""The scope guard every attack passes its targets through before sending anything.

Pure: no I/O, no name resolution. A target string is a comma-separated list of IPv4
addresses and CIDR blocks; each must lie wholly inside the address plan's subnet. The guard
expands the accepted targets to an explicit, ordered, duplicate-free list of host addresses,
so an attack only ever sends to addresses this module returned.

What it cannot do: resolve host names (it refuses them), accept IPv6, nmap-style ranges
(``10.0.0.1-30``) or CIDRs with host bits set (``10.0.0.5/24``: ambiguous, so refused with a hint).
"""

from __future__ import annotations

import ipaddress
import re

from common.plan import AddressPlan

# The largest expansion an attack accepts: a /16 is more than any emulated network here and
# still small enough to hold in memory and on an nmap target file.
MAX_TARGET_ADDRESSES = 65536

_RANGE = re.compile(r"^\d{1,3}(\.\d{1,3}){0,3}-\d+")
_IPV4_CHARS = re.compile(r"^[0-9./]+$")


class ScopeError(ValueError):
    """A target was refused; ``str()`` is a one-line message naming the target."""


def _parse_one(item: str) -> ipaddress.IPv4Network:
    """One target item as an IPv4 network (a /32 for a bare address) or ScopeError."""
    if not item:
        raise ScopeError("empty target")
    if ":" in item:
        raise ScopeError(f"target {item!r}: IPv6 is not supported (IPv4 only)")
    if _RANGE.match(item) or "-" in item:
        raise ScopeError(f"target {item!r}: ranges are not accepted; use addresses or CIDRs")
    if not _IPV4_CHARS.match(item):
        raise ScopeError(
            f"target {item!r}: not an IPv4 address or CIDR (host names are not resolved)")
    try:
        return ipaddress.IPv4Network(item, strict=True)
    except ipaddress.NetmaskValueError as exc:
        raise ScopeError(f"target {item!r}: malformed CIDR ({exc})") from None
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.IPv4Network(item, strict=False)
            raise ScopeError(
                f"target {item!r}: host bits set in CIDR; did you mean {loose}?") from None
        raise ScopeError(f"target {item!r}: malformed IPv4 address or CIDR ({exc})") from None


def _reserved(plan_net: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ...]:
    """The plan network's own network and broadcast addresses (never a host's)."""
    if plan_net.prefixlen >= 31:
        return ()
    return (plan_net.network_address, plan_net.broadcast_address)


def check_target(plan: AddressPlan, item: str) -> ipaddress.IPv4Network:
    """Validate one target item against ``plan``; return it as a network or raise ScopeError."""
    net = _parse_one(item.strip())
    plan_net = plan.network
    if not net.subnet_of(plan_net):
        raise ScopeError(f"target {item.strip()!r} is outside the plan's subnet {plan_net}")
    if net.prefixlen == 32 and net.network_address in _reserved(plan_net):
        raise ScopeError(
            f"target {item.strip()!r} is the network or broadcast address of {plan_net}")
    return net


def expand_targets(plan: AddressPlan, targets: str) -> tuple[str, ...]:
    """Expand a comma-separated target string into the in-scope host addresses, in order.

    plan: the address plan whose subnet bounds the scope.
    targets: e.g. ``"10.0.0.0/24"`` or ``"10.0.0.1,10.0.0.8/29"``.

    Raises ScopeError (one-line message) when any item is refused or nothing remains; one
    bad item refuses the whole string, so a typo never silently shrinks or widens a scan.
    """
    if targets is None or not targets.strip():
        raise ScopeError("no targets given (empty string)")
    plan_net = plan.network
    excluded = set(_reserved(plan_net))
    seen: set[ipaddress.IPv4Address] = set()
    out: list[str] = []
    for item in targets.split(","):
        net = check_target(plan, item)
        if net.num_addresses > MAX_TARGET_ADDRESSES:
            raise ScopeError(f"target {item.strip()!r}: more than {MAX_TARGET_ADDRESSES} "
                             "addresses")
        addresses = [net.network_address] if net.prefixlen == 32 else list(net.hosts())
        for address in addresses:
            if address in excluded or address in seen:
                continue
            seen.add(address)
            out.append(str(address))
        if len(out) > MAX_TARGET_ADDRESSES:
            raise ScopeError(f"targets {targets!r}: more than {MAX_TARGET_ADDRESSES} addresses")
    if not out:
        raise ScopeError(f"targets {targets!r}: no host address in scope")
    return tuple(out)


def require_in_scope(plan: AddressPlan, address: str) -> str:
    """Return ``address`` when it is one in-scope host address; raise ScopeError otherwise.

    For checks right before sending: a reply-derived or computed address is re-checked here.
    """
    expanded = expand_targets(plan, address)
    if len(expanded) != 1 or "/" in address:
        raise ScopeError(f"target {address!r}: expected one address")
    return expanded[0]
