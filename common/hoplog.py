"""The hop log: one JSON line per address change of a protected host.

Written by both moving-target defenses (the controller app :mod:`controllers.rhm` and the
host defense :mod:`defenses.nat_hop`), read by lab mode's ``mtd`` command and by the scoring
of experiments. :class:`HopRecord` is the record; :func:`append`/:func:`write` put records on
disk and :func:`read` gets them back, from logs of either defense, old or new.

On disk (keys sorted) every record has ``time_unix_s`` (wall clock when the hop was in
place), ``t_s`` (scheduled time, seconds after the schedule's start), ``seq``, ``host``,
``real_ip``, ``old_virtual`` (null for the first address), ``new_virtual`` and
``kept_flows``, plus its defense's own fields:

- rhm: ``flows_installed``, ``flows_deleted``, ``switches`` and ``decision_to_flows_ms``
  (null when no switch was touched or a barrier reply did not come);
- nat: ``defense`` (``nat_hop``), ``rules_installed``, ``rules_removed``,
  ``addresses_added``, ``decision_to_rules_ms``, ``late_ms`` and ``rules``.

The two latency keys are one quantity, from taking the hop to the new address enforced:
:attr:`HopRecord.decision_ms` in memory. A record without ``defense`` is rhm's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import jsonlines

RHM = "rhm"
NAT = "nat_hop"
# The on-disk name of the decision-to-enforcement latency, per defense (see the docstring).
LATENCY_KEY = {RHM: "decision_to_flows_ms", NAT: "decision_to_rules_ms"}
_RHM_KEYS = ("flows_installed", "flows_deleted", "switches")
_NAT_KEYS = ("rules_installed", "rules_removed", "addresses_added", "late_ms")


@dataclass(frozen=True)
class HopRecord:
    """One hop, as either defense logs it.

    defense: RHM or NAT, the writer. decision_ms: from taking the hop to the new address
    enforced (flows or rules in place); None when rhm saw no barrier reply.
    flows_*, switches: rhm's switch changes (None for nat). rules_*, addresses_added,
    late_ms (how long after its scheduled time the hop was taken), rules (the added rules,
    described): nat's (None / empty for rhm).
    """

    time_unix_s: float
    t_s: float
    seq: int
    host: str
    real_ip: str
    old_virtual: str | None
    new_virtual: str
    kept_flows: int = 0
    decision_ms: float | None = None
    defense: str = RHM
    flows_installed: int | None = None
    flows_deleted: int | None = None
    switches: int | None = None
    rules_installed: int | None = None
    rules_removed: int | None = None
    addresses_added: int | None = None
    late_ms: float | None = None
    rules: tuple[str, ...] = ()

    @property
    def first(self) -> bool:
        """The host's first address (no hop away from an old one)."""
        return self.old_virtual is None

    def to_json(self) -> dict[str, Any]:
        """The on-disk object: the common keys and this record's defense's own."""
        out: dict[str, Any] = {
            "time_unix_s": self.time_unix_s, "t_s": self.t_s, "seq": self.seq,
            "host": self.host, "real_ip": self.real_ip, "old_virtual": self.old_virtual,
            "new_virtual": self.new_virtual, "kept_flows": self.kept_flows,
            LATENCY_KEY[self.defense]: self.decision_ms,
        }
        if self.defense == NAT:
            out.update({k: getattr(self, k) for k in _NAT_KEYS}, defense=NAT,
                       rules=list(self.rules))
        else:
            out.update({k: getattr(self, k) for k in _RHM_KEYS})
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HopRecord | None:
        """A record from an on-disk object of either defense; None when it is not one."""
        defense = obj.get("defense", RHM)
        if defense not in LATENCY_KEY:
            return None
        try:
            return cls(
                time_unix_s=float(obj["time_unix_s"]), t_s=float(obj["t_s"]),
                seq=int(obj["seq"]), host=str(obj["host"]), real_ip=str(obj["real_ip"]),
                old_virtual=_str_or_none(obj.get("old_virtual")),
                new_virtual=str(obj["new_virtual"]), kept_flows=int(obj.get("kept_flows", 0)),
                decision_ms=_float_or_none(obj.get(LATENCY_KEY[defense])), defense=defense,
                **{k: _int_or_none(obj.get(k)) for k in _RHM_KEYS + _NAT_KEYS[:3]},
                late_ms=_float_or_none(obj.get("late_ms")),
                rules=tuple(str(r) for r in obj.get("rules") or ()))
        except (KeyError, TypeError, ValueError):
            return None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def append(path: Path, record: HopRecord) -> None:
    """Add one hop to a log (one line; the file is closed, so a reader sees it at once)."""
    jsonlines.append(path, record.to_json())


def write(path: Path, records: Iterable[HopRecord]) -> None:
    """A whole log (replacing the file)."""
    jsonlines.write(path, (r.to_json() for r in records))


def parse(lines: Iterable[str]) -> list[HopRecord]:
    """The hops of JSON lines, in file order; torn lines and other objects are skipped."""
    records = (HopRecord.from_json(obj) for obj in jsonlines.parse(lines))
    return [r for r in records if r is not None]


def read(paths: Iterable[Path]) -> list[HopRecord]:
    """The hops of one or more logs, sorted by time; a missing file has none."""
    records = (HopRecord.from_json(obj) for path in paths for obj in jsonlines.read(path))
    return sorted((r for r in records if r is not None), key=lambda r: r.time_unix_s)
