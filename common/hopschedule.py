"""The hop schedule that both moving-target defenses share (pure: no I/O, no framework).

``rhm`` (in the controller, :mod:`controllers.rhm_core`) and ``nat`` (in each protected host,
:mod:`defenses.nat_hop`) draw virtual addresses from this one schedule, so the same plan,
seed and interval give the same (time, host, virtual address) sequence under both.

**Determinism**: all random choices come from one ``random.Random(seed)`` consumed in
schedule order (scheduled time, then host order), not in call order, so the same seed gives
the same sequence however often :meth:`HopSchedule.pop_due` is called.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import random
from collections.abc import Collection
from dataclasses import dataclass

from common.plan import AddressPlan, HostSpec

ARP_MAC_CHOICES = ("virtual", "real")


class MutationError(ValueError):
    """The plan or configuration cannot support host mutation."""


@dataclass(frozen=True)
class MutationConfig:
    """Tunables of random host mutation.

    hop_interval_s: time between two address changes of one host.
    jitter_s: each interval is drawn uniformly from hop_interval_s +/- jitter_s.
    seed: seed of every random choice (same seed, same schedule).
    flow_idle_timeout_s: a conversation keeps its virtual address until idle this long.
    arp_mac: ``virtual`` (a MAC per virtual address) or ``real`` (the host's own MAC).
    quarantine_s: a retired virtual address is not handed out again, and new flows to it are
        dropped, for this long; None means 2 x flow_idle_timeout_s + hop_interval_s.
    """

    hop_interval_s: float = 5.0
    jitter_s: float = 0.0
    seed: int = 1
    flow_idle_timeout_s: int = 10
    arp_mac: str = "virtual"
    quarantine_s: float | None = None

    def __post_init__(self) -> None:
        if not self.hop_interval_s > 0:
            raise MutationError(f"hop_interval_s must be positive, got {self.hop_interval_s}")
        if not 0 <= self.jitter_s < self.hop_interval_s:
            raise MutationError(f"jitter_s must be in [0, hop_interval_s), got {self.jitter_s}")
        if not 1 <= self.flow_idle_timeout_s <= 0xFFFF:
            raise MutationError(f"flow_idle_timeout_s must be 1..65535, got "
                                f"{self.flow_idle_timeout_s}")
        if self.arp_mac not in ARP_MAC_CHOICES:
            raise MutationError(f"arp_mac must be one of {ARP_MAC_CHOICES}, got {self.arp_mac!r}")
        if self.quarantine_s is not None and self.quarantine_s < 0:
            raise MutationError(f"quarantine_s must be >= 0, got {self.quarantine_s}")

    @property
    def effective_quarantine_s(self) -> float:
        if self.quarantine_s is not None:
            return self.quarantine_s
        return 2.0 * self.flow_idle_timeout_s + self.hop_interval_s


@dataclass(frozen=True)
class HopEvent:
    """One address change. t_s: scheduled time in seconds after the schedule started;
    old_virtual is None for a host's first assignment."""

    seq: int
    t_s: float
    host: str
    real_ip: str
    old_virtual: str | None
    new_virtual: str


def virtual_mac(virtual_ip: str, avoid: Collection[str] = ()) -> str:
    """The virtual MAC of a virtual IP, in the real hosts' own MAC space: what
    :func:`common.plan.mac_for` gives a host at that address (``02:00:00:00`` + the address's
    low two bytes; locally administered, unicast), so a virtual address's MAC does not tell it
    from a real host's. (Until the hardening issue it was ``06:00`` + the IP: a giveaway.)

    avoid: MACs that must not be answered (the plan's hosts' own, see :func:`plan_macs`): a
    plan with its own MAC scheme could hold this one, and a defense must never impersonate a
    real host; then the first byte becomes ``06`` (still local, unicast). Both defenses (the
    ``rhm`` controller's ARP answers, ``nat``'s per-address interfaces) use this one rule.
    """
    low = ipaddress.IPv4Address(virtual_ip).packed[2:]
    mac = f"02:00:00:00:{low[0]:02x}:{low[1]:02x}"
    return mac if mac not in avoid else "06" + mac[2:]


def plan_macs(plan: AddressPlan) -> frozenset[str]:
    """Every host's real MAC in ``plan``: what :func:`virtual_mac` must avoid."""
    return frozenset(h.mac for h in plan.hosts)


class HopSchedule:
    """Which virtual address each protected host holds, and when it changes (see module doc)."""

    def __init__(self, hosts: tuple[HostSpec, ...], pool: tuple[str, ...],
                 config: MutationConfig) -> None:
        self.config = config
        self.hosts = hosts
        real = {h.ip for h in hosts}
        self.pool = tuple(sorted((a for a in set(pool) if a not in real),
                                 key=lambda a: ipaddress.IPv4Address(a)))
        if hosts and len(self.pool) <= len(hosts):
            raise MutationError(f"virtual pool of {len(self.pool)} address(es) is too small for "
                                f"{len(hosts)} protected host(s): need at least "
                                f"{len(hosts) + 1}")
        self._rng = random.Random(config.seed)
        self._seq = 0
        self.current: dict[str, str] = {}
        self._retired_at_s: dict[str, float] = {}
        self._queue: list[tuple[float, int]] = []  # (due t_s, host index)
        self.initial: tuple[HopEvent, ...] = tuple(self._hop(0.0, i)
                                                  for i in range(len(hosts)))
        for i in range(len(hosts)):
            heapq.heappush(self._queue, (self._interval_s(), i))

    def _interval_s(self) -> float:
        jitter = self.config.jitter_s
        return self.config.hop_interval_s + (self._rng.uniform(-jitter, jitter) if jitter else 0)

    def _hop(self, t_s: float, index: int) -> HopEvent:
        host = self.hosts[index]
        taken = set(self.current.values())
        quarantine_s = self.config.effective_quarantine_s
        candidates = [a for a in self.pool if a not in taken
                      and t_s - self._retired_at_s.get(a, -math.inf) >= quarantine_s]
        if not candidates:  # pool smaller than the quarantine needs: reuse the oldest retirees
            candidates = [a for a in self.pool if a not in taken]
        new = self._rng.choice(candidates)
        old = self.current.get(host.name)
        if old is not None:
            self._retired_at_s[old] = t_s
        self.current[host.name] = new
        self._seq += 1
        return HopEvent(self._seq, t_s, host.name, host.ip, old, new)

    @property
    def next_due_s(self) -> float:
        """Scheduled time of the next hop (infinite when there is no protected host)."""
        return self._queue[0][0] if self._queue else math.inf

    def pop_due(self, t_s: float) -> list[HopEvent]:
        """Apply every hop scheduled at or before ``t_s``, in schedule order."""
        events = []
        while self._queue and self._queue[0][0] <= t_s:
            due_s, index = heapq.heappop(self._queue)
            events.append(self._hop(due_s, index))
            heapq.heappush(self._queue, (due_s + self._interval_s(), index))
        return events

    def owner(self, virtual_ip: str) -> str | None:
        for name, address in self.current.items():
            if address == virtual_ip:
                return name
        return None


def schedule_events(plan: AddressPlan, config: MutationConfig, until_s: float
                    ) -> list[HopEvent]:
    """Every assignment and hop of ``plan`` up to ``until_s`` (for tests and ground truth)."""
    schedule = HopSchedule(plan.protected, plan.virtual_pool, config)
    return [*schedule.initial, *schedule.pop_due(until_s)]
