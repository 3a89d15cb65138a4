"""Scoring of the ``attacks`` experiment: pure functions from the HMI's records, the PLC's
ground truth and the attacker's outcome JSON to figures (no I/O).

The conditions and what each measures are described in :mod:`experiments.attacks_exp`, which
runs the trials and calls these.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attacks.tank_impact import TankImpact
from plc.metrics import RequestRecord, plc_metrics

CONDITIONS = ("baseline", "inject", "mitm", "synflood", "fuzz")
FALSE_READING_TOLERANCE_CM = 1.0
TRUTH_SLACK_S = 0.5  # clock alignment error allowed between HMI and PLC records


def window_records(records: Iterable[RequestRecord], start_t_s: float, end_t_s: float
                   ) -> list[RequestRecord]:
    """The HMI records whose request started in ``[start_t_s, end_t_s)`` (HMI clock)."""
    return [r for r in records if start_t_s <= r.t_s < end_t_s]


def window_figures(records: Sequence[RequestRecord], plc: str, start_t_s: float,
                   end_t_s: float) -> dict[str, float]:
    """HMI figures of ``plc`` over a window: polls, availability, latency p50/p95, outage.

    A window without polls has availability NaN (not 0: nothing was asked).
    """
    m = plc_metrics(plc, window_records(records, start_t_s, end_t_s))
    return {"polls": float(m.polls), "availability": m.availability,
            "latency_p50_ms": m.latency_p50_ms, "latency_p95_ms": m.latency_p95_ms,
            "longest_outage_s": m.longest_outage_s, "timeouts": float(m.timeouts),
            "connection_errors": float(m.connection_errors)}


def hmi_readings(records: Iterable[RequestRecord], plc: str, function: str, address: int,
                 resolution: float) -> list[tuple[float, float]]:
    """(t_s, engineering value) of one register in every answered HMI read that covers it.

    address: the register's address; reads start at ``r.address`` and hold ``r.count``
    values, space-separated raw integers in ``r.values``.
    """
    out = []
    for r in records:
        if r.plc != plc or r.function != function or r.outcome != "ok" or not r.values:
            continue
        index = address - r.address
        values = r.values.split()
        if 0 <= index < len(values):
            try:
                out.append((r.t_s, int(values[index]) * resolution))
            except ValueError:
                continue
    return out


def false_reading_share(readings: Sequence[tuple[float, float]],
                        truth: Sequence[tuple[float, float]], offset_s: float,
                        tolerance: float = FALSE_READING_TOLERANCE_CM,
                        slack_s: float = TRUTH_SLACK_S) -> float:
    """Share of readings no ground-truth value near their time explains.

    readings: (HMI time, value the HMI was shown). truth: (PLC time, true value), sorted by
    time. offset_s: PLC clock minus HMI clock. A reading is true when some truth row within
    ``slack_s`` of its PLC time is within ``tolerance`` of it; readings with no truth row in
    reach are not counted. NaN when none is counted.
    """
    times = [t for t, _v in truth]
    false = counted = 0
    for t_hmi, value in readings:
        t = t_hmi + offset_s
        near = truth[bisect_left(times, t - slack_s):bisect_right(times, t + slack_s)]
        if not near:
            continue
        counted += 1
        if min(abs(value - v) for _t, v in near) > tolerance:
            false += 1
    return false / counted if counted else math.nan


def deviation_metrics(impact: TankImpact) -> dict[str, float]:
    """Scalar tank metrics from an impact: excursion over/under the band and times to it.

    Times that never happened are left out (a metric is a number, not "never").
    """
    out = {
        "tank_max_over_high_sp_cm": max(0.0, impact.max_level_cm - impact.high_sp_cm),
        "tank_max_under_low_sp_cm": max(0.0, impact.low_sp_cm - impact.min_level_cm),
        "tank_left_band": float(impact.left_band),
        "tank_spilled_l": impact.spilled_l,
        "tank_observed_s": impact.observed_s,
    }
    for key, value in (("tank_above_high_sp_after_s", impact.above_high_sp_after_s),
                       ("tank_alarm_high_high_after_s", impact.alarm_high_high_after_s),
                       ("tank_overflow_after_s", impact.alarm_overflow_after_s)):
        if value is not None:
            out[key] = value
    return out


def attacker_metrics(condition: str, outcome: Mapping[str, Any]) -> dict[str, float]:
    """What the attacker learned or changed, from its outcome JSON."""
    if condition == "inject":
        return {"inject_writes_accepted": float(outcome.get("writes_ok", 0)),
                "inject_writes_refused": float(outcome.get("writes_refused", 0))}
    if condition == "mitm":
        tamper = outcome.get("tamper") or {}
        return {"mitm_modbus_exchanges": float(outcome.get("exchange_count", 0)),
                "mitm_frames_intercepted": float(sum(
                    (outcome.get("intercepted_frames") or {}).values())),
                "mitm_responses_tampered": float(tamper.get("responses_rewritten", 0))}
    if condition == "synflood":
        flood = outcome.get("flood") or {}
        return {"flood_packets_sent": float(flood.get("packets", 0)),
                "flood_rate_pps": float(flood.get("rate_pps", 0.0))}
    if condition == "fuzz":
        barrage = outcome.get("barrage") or {}
        return {"fuzz_frames_sent": float(barrage.get("frames", 0)),
                "fuzz_connections": float(barrage.get("connections", 0))}
    return {}


_LLADDR = re.compile(r"\blladdr\s+([0-9a-fA-F:]{17})")


def neighbor_mac(ip_neigh_text: str, ip: str) -> str | None:
    """The MAC an ``ip neigh show`` output maps ``ip`` to; None when absent or unresolved."""
    for line in ip_neigh_text.splitlines():
        fields = line.split()
        if fields and fields[0] == ip:
            m = _LLADDR.search(line)
            return m.group(1).lower() if m else None
    return None


def arp_restored(entries: Mapping[str, str | None], expected: Mapping[str, str]) -> bool:
    """Every entry (victim:ip → MAC or None) is absent or the real MAC ``expected[key]``."""
    return all(mac is None or mac == expected[key].lower() for key, mac in entries.items())
