"""Host groups in plant files: one ``hosts`` entry with ``count: N`` stands for N hosts.

A group ``{name: fd, count: 3, address: 10.0.1.10, ...}`` is the hosts ``fd1``, ``fd2``,
``fd3`` at 10.0.1.10, .11, .12, each with the entry's role, zone and flags. The members are
then checked like hand-written hosts (:mod:`common.plant` does it: names, duplicates, pool);
this module only does the arithmetic and the checks only a group can fail: its size, a
given MAC (one MAC cannot serve N hosts) and an address range that runs past the subnet.

Pure: no I/O, no project imports; :mod:`common.plant` turns a :class:`GroupError` into its
one-line ``hosts[i].key: what`` message.
"""

from __future__ import annotations

import ipaddress
from typing import Any

# The largest group: a /20's worth of hosts, far beyond what one machine emulates.
MAX_GROUP = 4096
COUNT_KEY = "count"


class GroupError(ValueError):
    """A group entry is wrong; ``key`` is the entry's key the message is about."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def member_names(base: str, count: int) -> list[str]:
    """``base1`` .. ``base<count>``."""
    return [f"{base}{k}" for k in range(1, count + 1)]


def expand_group(entry: dict[str, Any], first_ip: str, count: int,
                 net: ipaddress.IPv4Network) -> list[dict[str, Any]]:
    """The members of a group entry (already a mapping with a valid first address and count).

    Each member is the entry with its own ``name`` and ``address`` and without ``count``;
    GroupError when the entry gives a ``mac`` or its last address is past the subnet's last
    host address.
    """
    if "mac" in entry:
        raise GroupError("mac", f"a group of {count} cannot share one MAC (drop mac: each "
                         "member's MAC is derived from its address)")
    first = int(ipaddress.IPv4Address(first_ip))
    last_usable = int(net.broadcast_address) - 1
    if first + count - 1 > last_usable:
        room = last_usable - first + 1
        raise GroupError(COUNT_KEY, f"{count} hosts from {first_ip} run past the subnet's "
                         f"end ({ipaddress.IPv4Address(last_usable)} is its last host "
                         f"address: room for {room})")
    rest = {k: v for k, v in entry.items() if k != COUNT_KEY}
    return [{**rest, "name": name, "address": str(ipaddress.IPv4Address(first + k))}
            for k, name in enumerate(member_names(str(entry["name"]), count))]
