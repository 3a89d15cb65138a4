"""Scoring the attacker's view against the ground truth (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


def s7_identified(finding: Mapping) -> bool:
    """True when nmap's ``s7-info`` read an S7 CPU's identity on 102/tcp (module or system
    name from its SZL answers); an open port 102 alone (any ISO-TSAP service) is not one."""
    for svc in finding.get("services", []):
        details = svc.get("details") or {}
        if svc.get("port") == 102 and (details.get("s7-info.Module")
                                        or details.get("s7-info.System Name")):
            return True
    return False


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


# --- success counted at the target ----------------------------------------------------------
NO_TARGET = "no target found"
NOT_REACHED = "attempted, not reached"
REACHED = "reached"
# An attempt and the PLC's record of it are matched within this much time either side (the
# PLC writes its record between the attacker's send and its receive, on the same clock).
MATCH_SLACK_S = 1.0


@dataclass(frozen=True)
class AttackAttempt:
    """One try to talk Modbus, as the attacker recorded it (attacks.attacker_common.Attempt,
    or a modbus_probe result).

    sent: a Modbus request left (the attacker got a TCP connection); src_ip, src_port: the
        source it left with, the key into the PLC's request log.
    """

    tactic: str
    address: str
    src_ip: str
    src_port: int
    started_unix_s: float
    ended_unix_s: float
    sent: bool
    reply_unix_s: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping, tactic: str = "") -> AttackAttempt:
        sent = d.get("sent")
        if sent is None:  # a modbus_probe result: past "connect" means the request went out
            sent = d.get("stage") in ("request", "reply")
        return cls(tactic=str(d.get("tactic") or tactic), address=str(d.get("address", "")),
                   src_ip=str(d.get("src_ip") or ""), src_port=int(d.get("src_port") or 0),
                   started_unix_s=float(d.get("started_unix_s") or 0.0),
                   ended_unix_s=float(d.get("ended_unix_s") or 0.0), sent=bool(sent),
                   reply_unix_s=float(d.get("reply_unix_s") or 0.0))


@dataclass(frozen=True)
class AttackScore:
    """One tactic's (or a whole attack's) result, judged by the PLCs' request logs.

    connects: addresses the attacker tried to connect to (refused or timed-out connects
        included; informational only). attempts: Modbus requests actually sent (a TCP
        connection was made and the request left); 0 means "no target found", whatever was
        connected to. reaches: attempts a PLC logged as answered.
    plcs_reached: the PLCs whose logs show a reach; plcs_total: PLCs in the plan.
    """

    tactic: str
    connects: int
    attempts: int
    reaches: int
    plcs_reached: tuple[str, ...]
    plcs_total: int

    @property
    def tried(self) -> bool:
        """A Modbus request was sent to a found target (a refused connect is no attempt)."""
        return self.attempts > 0

    @property
    def outcome(self) -> str:
        if not self.tried:
            return NO_TARGET
        return REACHED if self.plcs_reached else NOT_REACHED

    @property
    def success(self) -> Proportion:
        """1 of 1 when a PLC was reached, 0 of 1 when tried and not, 0 of 0 (NaN) when there
        was no target: no attempt is its own outcome, never a 0."""
        return Proportion(int(bool(self.plcs_reached)), 1 if self.tried else 0)

    @property
    def reach_share(self) -> Proportion:
        """PLCs reached of the plan's PLCs (0 of 0, NaN, when there was no target)."""
        return Proportion(len(self.plcs_reached), self.plcs_total if self.tried else 0)


def matching_records(attempt: AttackAttempt, records: Iterable[Any]) -> list[Any]:
    """The PLC request-log records (common.requestlog.RequestRecord) of ``attempt``: answered,
    from its source address and port, within its time window."""
    if not attempt.sent or not attempt.src_port:
        return []
    lo = attempt.started_unix_s - MATCH_SLACK_S
    hi = (attempt.ended_unix_s or attempt.started_unix_s) + MATCH_SLACK_S
    return [r for r in records if r.answered and r.client_ip == attempt.src_ip
            and r.client_port == attempt.src_port and lo <= r.t_unix_s <= hi]


def score_attack(attempts: Iterable[AttackAttempt], records: Iterable[Any],
                 plc_names: Iterable[str], tactic: str = "") -> AttackScore:
    """Attempts against the PLCs' own request logs: a reach is an answered request the PLC
    logged from the attempt's source, whatever address the attacker used to get there. Only
    a sent Modbus request is an attempt: connects refused by (or timed out at) the found
    addresses leave the outcome at "no target found"."""
    recs = list(records)
    plcs = set(plc_names)
    connects = attempts_sent = reaches = 0
    reached: set[str] = set()
    for a in attempts:
        connects += 1
        attempts_sent += a.sent
        hits = [r for r in matching_records(a, recs) if r.plc in plcs]
        reaches += bool(hits)
        reached |= {r.plc for r in hits}
    return AttackScore(tactic, connects, attempts_sent, reaches, tuple(sorted(reached)), len(plcs))


def score_tactics(attempts: Iterable[AttackAttempt], records: Iterable[Any],
                  plc_names: Iterable[str], tactics: Iterable[str]) -> dict[str, AttackScore]:
    """:func:`score_attack` per tactic (every named tactic, tried or not)."""
    alist, recs, plcs = list(attempts), list(records), list(plc_names)
    return {t: score_attack([a for a in alist if a.tactic == t], recs, plcs, t)
            for t in tactics}
