"""Moving-target defenses in a lab, and what an attacker's findings are worth under them.

Two mechanisms, one schedule (same seed and interval ⇒ same virtual addresses):
- ``rhm``: random host mutation in the OpenFlow controller (``python -m controllers rhm``);
- ``nat``: IP hopping with iptables NAT inside each protected host (``defenses.nat_hop``);
- ``none``: the plain learning switch.

The pure half turns hop logs into address spans (which host owned which address when) and
scores findings against them; the I/O half starts a defense and runs the validity check:
from the attacker's namespace, the protected hosts' real addresses must not answer (ARP,
ICMP, TCP 502) — a run where they do is invalid and not scored.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import LabError, UserError
from common.plan import AddressPlan
from lab.lifecycle import Lab

DEFENSES = ("none", "rhm", "nat")
INF = math.inf


def parse_defenses(text: str) -> list[str]:
    """``none,rhm`` → ['none', 'rhm']; ``all`` → every defense."""
    if text.strip() == "all":
        return list(DEFENSES)
    out = []
    for item in text.split(","):
        item = item.strip()
        if item not in DEFENSES:
            raise UserError(f"--defense: unknown defense {item!r} (choose from "
                            f"{', '.join(DEFENSES)}, or all)")
        if item not in out:
            out.append(item)
    if not out:
        raise UserError("--defense: name at least one defense")
    return out


# --- pure: address spans and the value of findings ----------------------------------------
@dataclass(frozen=True)
class AddressSpan:
    """``host`` answered at ``address`` from ``start_unix_s`` until ``end_unix_s`` (new
    connections; established ones may live longer)."""

    host: str
    address: str
    start_unix_s: float
    end_unix_s: float = INF


def read_hop_log(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """JSON lines of one or more hop logs, sorted by time; a torn last line is skipped."""
    records = []
    for path in paths:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "new_virtual" in rec and "host" in rec:
                records.append(rec)
    return sorted(records, key=lambda r: float(r.get("time_unix_s", 0.0)))


def address_spans(plan: AddressPlan, hops: Sequence[dict[str, Any]], defense: str
                  ) -> list[AddressSpan]:
    """Who answers where, over time, as an unauthorized host sees it.

    Unprotected hosts answer at their real address all the time; protected hosts too without
    a defense. Under a defense a protected host answers only at its current virtual address.
    """
    spans = [AddressSpan(h.name, h.ip, -INF) for h in plan.hosts
             if defense == "none" or not h.protected]
    if defense == "none":
        return spans
    by_host: dict[str, list[dict[str, Any]]] = {}
    for rec in hops:
        by_host.setdefault(rec["host"], []).append(rec)
    for host, recs in by_host.items():
        for i, rec in enumerate(recs):
            end = float(recs[i + 1]["time_unix_s"]) if i + 1 < len(recs) else INF
            spans.append(AddressSpan(host, rec["new_virtual"], float(rec["time_unix_s"]), end))
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
    precision = len(hit) / len(owners) if owners else math.nan
    recall = len(set(hit) & truth) / len(truth) if truth else math.nan
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
    return ok / len(findings)


def staleness_curve(findings: Sequence[Finding], spans: Sequence[AddressSpan],
                    t0_unix_s: float, offsets_s: Sequence[float]) -> list[tuple[float, float]]:
    """(seconds after ``t0``, share still valid) for each offset."""
    return [(o, valid_share(findings, spans, t0_unix_s + o)) for o in offsets_s]


def hop_latencies_ms(hops: Sequence[dict[str, Any]]) -> list[float]:
    """Decision-to-enforcement latency of every real hop (first assignments excluded)."""
    out = []
    for rec in hops:
        if rec.get("old_virtual") is None:
            continue
        v = rec.get("decision_to_flows_ms", rec.get("decision_to_rules_ms"))
        if v is not None:
            out.append(float(v))
    return out


# --- I/O: starting a defense, the validity check ---------------------------------------
@dataclass(frozen=True)
class DefenseSettings:
    """hop_interval_s, seed, flow_idle_s: shared by both mechanisms (like for like)."""

    defense: str
    hop_interval_s: float = 2.0
    seed: int = 1
    flow_idle_s: int = 10
    detector: bool = False


@dataclass
class RunningDefense:
    settings: DefenseSettings
    hop_logs: list[Path] = field(default_factory=list)

    def hops(self) -> list[dict[str, Any]]:
        return read_hop_log(self.hop_logs)


def controller_setup(settings: DefenseSettings, plan_path: Path, raw_dir: Path
                     ) -> tuple[str, tuple[str, ...], list[Path]]:
    """(app, controller args, hop logs) for the lab's controller."""
    if settings.defense == "rhm":
        hop_log = raw_dir / "hops_rhm.jsonl"
        args = ("--plan", str(plan_path), "--hop-interval-s", f"{settings.hop_interval_s:g}",
                "--seed", str(settings.seed), "--flow-idle-s", str(settings.flow_idle_s),
                "--hop-log", str(hop_log))
        if settings.detector:
            args += ("--detector", "--detect-log", str(raw_dir / "detections.jsonl"))
        return "rhm", args, [hop_log]
    if settings.detector:
        return "detector", ("--detect-log", str(raw_dir / "detections.jsonl")), []
    return "l2", (), []


def start_defense(lab: Lab, settings: DefenseSettings, plan_path: Path, raw_dir: Path,
                  hop_logs: list[Path], timeout_s: float = 20.0) -> RunningDefense:
    """Start the host side (nat) and wait until every protected host has its first virtual
    address (rhm: its first hop-log entry; nat: each ``nat_hop ready``)."""
    running = RunningDefense(settings, list(hop_logs))
    protected = [h.name for h in lab.plan.protected]
    if settings.defense == "nat":
        epoch = time.time()
        procs = []
        for name in protected:
            log_path = raw_dir / f"hops_nat_{name}.jsonl"
            running.hop_logs.append(log_path)
            procs.append((name, lab.python(name, "defenses.nat_hop", [
                "--plan", str(plan_path), "--host", name, "--log", str(log_path),
                "--hop-interval-s", f"{settings.hop_interval_s:g}", "--seed",
                str(settings.seed), "--flow-idle-s", str(settings.flow_idle_s),
                "--start-epoch-s", f"{epoch:.6f}"], f"nat_hop_{name}.log")))
        for name, proc in procs:
            lab.wait_for_log(f"nat_hop_{name}.log", "nat_hop ready", timeout_s, proc)
    elif settings.defense == "rhm":
        deadline = time.monotonic() + timeout_s
        while {r["host"] for r in running.hops()} < set(protected):
            lab.check_healthy()
            if time.monotonic() > deadline:
                raise LabError("rhm: protected hosts got no virtual address within "
                               f"{timeout_s:g} s")
            time.sleep(0.05)
    return running


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
