"""What an attacker's findings are worth under a moving-target defense.

The defenses (``none``, ``rhm``, ``nat``) are started by the lab's one launcher,
:mod:`lab.defenses` (its names are re-exported here for the experiments). The pure half
turns hop logs into address spans (which host owned which address when) and scores findings
against them; the I/O half is the validity check: from the attacker's namespace, the
protected hosts' real addresses must not answer (ARP, ICMP, TCP 502) — a run where they do
is invalid and not scored.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from common.errors import LabError
from common.hoplog import HopRecord
from common.plan import AddressPlan
from experiments.spec import parse_names
from lab.defenses import (
    DEFENSES,
    DefenseSettings,
    RunningDefense,
    controller_setup,
    start_defense,
)
from lab.lifecycle import Lab
from reporting.stats import Proportion

__all__ = ["DEFENSES", "DefenseSettings", "RunningDefense", "controller_setup",
           "start_defense"]

INF = math.inf


def parse_defenses(text: str) -> list[str]:
    """``none,rhm`` → ['none', 'rhm']; ``all`` → every defense."""
    return parse_names(text, "--defense", "defense", DEFENSES)


# --- pure: address spans and the value of findings ----------------------------------------
@dataclass(frozen=True)
class AddressSpan:
    """``host`` answered at ``address`` from ``start_unix_s`` until ``end_unix_s`` (new
    connections; established ones may live longer)."""

    host: str
    address: str
    start_unix_s: float
    end_unix_s: float = INF


def address_spans(plan: AddressPlan, hops: Sequence[HopRecord], defense: str
                  ) -> list[AddressSpan]:
    """Who answers where, over time, as an unauthorized host sees it.

    Unprotected hosts answer at their real address all the time; protected hosts too without
    a defense. Under a defense a protected host answers only at its current virtual address.
    """
    spans = [AddressSpan(h.name, h.ip, -INF) for h in plan.hosts
             if defense == "none" or not h.protected]
    if defense == "none":
        return spans
    by_host: dict[str, list[HopRecord]] = {}
    for rec in hops:
        by_host.setdefault(rec.host, []).append(rec)
    for host, recs in by_host.items():
        for i, rec in enumerate(recs):
            end = recs[i + 1].time_unix_s if i + 1 < len(recs) else INF
            spans.append(AddressSpan(host, rec.new_virtual, rec.time_unix_s, end))
    return spans


def owner_at(spans: Sequence[AddressSpan], address: str, t_unix_s: float) -> str | None:
    for s in spans:
        if s.address == address and s.start_unix_s <= t_unix_s < s.end_unix_s:
            return s.host
    return None


@dataclass(frozen=True)
class Finding:
    address: str
    found_unix_s: float


@dataclass
class FindingsScore:
    """The attacker's findings against the spans.

    precision: share of findings that pointed at a host when found.
    recall: share of the observable hosts (``truth`` names) found at a right address.
    owners: finding address → host it pointed at when found (None: nothing).
    """

    precision: float
    recall: float
    owners: dict[str, str | None] = field(default_factory=dict)


def score_findings(findings: Sequence[Finding], spans: Sequence[AddressSpan],
                   truth: Iterable[str]) -> FindingsScore:
    truth = set(truth)
    owners = {f.address: owner_at(spans, f.address, f.found_unix_s) for f in findings}
    hit = [o for o in owners.values() if o is not None]
    precision = Proportion(len(hit), len(owners))
    recall = Proportion(len(set(hit) & truth), len(truth))
    return FindingsScore(precision, recall, owners)


def valid_share(findings: Sequence[Finding], spans: Sequence[AddressSpan],
                t_unix_s: float) -> float:
    """Share of the findings that, at ``t_unix_s``, still reach the host they reached when
    found (a finding that never reached anything counts as not valid)."""
    if not findings:
        return math.nan
    ok = 0
    for f in findings:
        then = owner_at(spans, f.address, f.found_unix_s)
        if then is not None and owner_at(spans, f.address, t_unix_s) == then:
            ok += 1
    return Proportion(ok, len(findings))


def staleness_curve(findings: Sequence[Finding], spans: Sequence[AddressSpan],
                    t0_unix_s: float, offsets_s: Sequence[float]) -> list[tuple[float, float]]:
    """(seconds after ``t0``, share still valid) for each offset."""
    return [(o, valid_share(findings, spans, t0_unix_s + o)) for o in offsets_s]


def staleness_since_found(findings: Sequence[Finding], spans: Sequence[AddressSpan],
                          offsets_s: Sequence[float]) -> list[tuple[float, float]]:
    """(seconds after each finding's own answer, share still valid then) for each offset:
    staleness measured from the moment each host answered, not from the scan's end."""
    out = []
    for o in offsets_s:
        ok = sum(1 for f in findings if (then := owner_at(spans, f.address, f.found_unix_s))
                 is not None and owner_at(spans, f.address, f.found_unix_s + o) == then)
        out.append((o, Proportion(ok, len(findings)) if findings else math.nan))
    return out


def hop_latencies_ms(hops: Sequence[HopRecord]) -> list[float]:
    """Decision-to-enforcement latency of every real hop (first assignments excluded)."""
    return [r.decision_ms for r in hops if not r.first and r.decision_ms is not None]


# --- I/O: the validity check ---------------------------------------------------------
# Runs inside the observer's namespace: every protected address checked at once (ping,
# TCP 502), then the ARP cache read, so the check costs about one time-out in all.
_REACH_CHECK = """
import json, socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

def ping(ip):
    return subprocess.run(["ping", "-n", "-c", "1", "-W", "1", ip],
                          capture_output=True).returncode == 0

def tcp(ip):
    try:
        socket.create_connection((ip, 502), timeout=1.0).close()
        return True
    except OSError:
        return False

ips = sys.argv[1:]
with ThreadPoolExecutor(2 * len(ips)) as pool:
    pings = list(pool.map(ping, ips))
    tcps = list(pool.map(tcp, ips))
neigh = {ip: subprocess.run(["ip", "neigh", "show", ip], capture_output=True,
                            text=True).stdout for ip in ips}
print(json.dumps([{"ip": ip, "icmp": p, "tcp": t, "arp": "lladdr" in neigh[ip]}
                  for ip, p, t in zip(ips, pings, tcps)]))
"""


@dataclass(frozen=True)
class ReachCheck:
    """What the attacker could do with a protected host's real address."""

    host: str
    address: str
    arp_resolved: bool
    icmp_answered: bool
    tcp_502_open: bool

    @property
    def reachable(self) -> bool:
        return self.arp_resolved or self.icmp_answered or self.tcp_502_open


def check_real_addresses(lab: Lab, observer: str) -> list[ReachCheck]:
    """From ``observer``'s namespace: ping, TCP 502 and the ARP cache for each protected
    host's real address. A check that cannot run raises LabError (never a silent pass)."""
    hosts = list(lab.plan.protected)
    if not hosts:
        return []
    res = lab.run(observer, [sys.executable, "-c", _REACH_CHECK, *(h.ip for h in hosts)],
                  timeout_s=20)
    try:
        rows = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LabError(f"validity check failed to run: {res.stdout.strip()[-200:]}") from None
    by_ip = {r["ip"]: r for r in rows}
    return [ReachCheck(h.name, h.ip, by_ip[h.ip]["arp"], by_ip[h.ip]["icmp"],
                       by_ip[h.ip]["tcp"]) for h in hosts]
