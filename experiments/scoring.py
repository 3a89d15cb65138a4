"""Scoring the attacker's view against the ground truth (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reporting.stats import Proportion


@dataclass(frozen=True)
class HostScore:
    """Host discovery against the ground truth.

    precision: share of reported hosts that are real (NaN when nothing was reported).
    recall: share of real hosts that were reported.
    """

    true_positives: tuple[str, ...]
    false_positives: tuple[str, ...]
    missed: tuple[str, ...]

    @property
    def precision(self) -> float:
        return Proportion(len(self.true_positives),
                          len(self.true_positives) + len(self.false_positives))

    @property
    def recall(self) -> float:
        return Proportion(len(self.true_positives), len(self.true_positives) + len(self.missed))


def score_hosts(found: Iterable[str], truth: Iterable[str]) -> HostScore:
    f, t = set(found), set(truth)
    return HostScore(tuple(sorted(f & t)), tuple(sorted(f - t)), tuple(sorted(t - f)))


@dataclass(frozen=True)
class PortScore:
    """Open ports found against the ports really listening, over the scanned port set."""

    expected: int
    found_expected: int
    unexpected: int

    @property
    def recall(self) -> float:
        return Proportion(self.found_expected, self.expected)


def score_ports(found: Mapping[str, Iterable[int]], truth: Mapping[str, Iterable[int]],
                scanned: Iterable[int]) -> PortScore:
    """Only ports in ``scanned`` count: a port never probed cannot be missed."""
    ports = set(scanned)
    exp = {(ip, p) for ip, ps in truth.items() for p in ps if p in ports}
    got = {(ip, p) for ip, ps in found.items() for p in ps if p in ports}
    return PortScore(len(exp), len(exp & got), len(got - exp))


def modbus_identified(finding: Mapping) -> bool:
    """True when a recon finding shows a Modbus unit answering on 502/tcp.

    nmap's ``modbus-discover`` lists each unit id that answered (``sid 0x1: ...``, an exception
    reply included: only a Modbus device sends one); the scapy engine records the Report
    Server ID reply. An open port 502 alone is not an identification.
    """
    for svc in finding.get("services", []):
        if svc.get("port") != 502:
            continue
        details = svc.get("details") or {}
        if "sid 0x" in str(details.get("modbus-discover", "")):
            return True
        if details.get("modbus-report-server-id"):
            return True
    return False
