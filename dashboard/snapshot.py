"""The page's data at one moment: a JSON-ready snapshot of a run, pure (no I/O).

Both the live server and the replay build a snapshot with :func:`build` from a
:class:`~dashboard.runs.RunData` and a wall-clock time ``now_unix_s``: only records at or
before ``now_unix_s`` count, and the charts cover the ``window_s`` before it. What each PLC
chart shows is derived from its register map (:mod:`plc.registers`), so a new process kind
gets its chart without a change here:

- the main variable: the first input register with a unit (tank ``level_cm``, pressure
  ``pressure_bar``), with the holding registers of the same unit as lines (``_sp``:
  setpoints; ``alarm``: the alarm band);
- the other input registers with a unit (pump speed, flows) on a second chart;
- the coils and discrete inputs (pump, valve, alarms) as on/off strips.

What it cannot do: show a record whose time it cannot place (see :mod:`dashboard.runs`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from common.groundtruth import GroundTruthRow
from common.hoplog import HopRecord
from common.plan import AddressPlan
from dashboard.progresslog import OUTCOMES, ProgressEvent
from dashboard.runs import Attack, PlcTrack, RunData
from lab.fidelity import LOW_IDLE_THRESHOLD, SATURATED_SAMPLE_SHARE
from plc.metrics import READ_FUNCTIONS, WRITE_FUNCTIONS, RequestRecord, plc_metrics
from plc.registers import MAPS, Table

DEFAULT_WINDOW_S = 600.0
MAX_POINTS = 600  # per chart line: the page stays light with ten minutes of history
MAX_HOPS_SHOWN = 200
CPU_WARN_WINDOW_S = 30.0
_SKIP = {"process_id", "scan_count"}


@dataclass(frozen=True)
class ChartSpec:
    """Which ground-truth columns a process's charts show (see the module docstring)."""

    main: str
    unit: str
    setpoints: tuple[str, ...]
    alarm_limits: tuple[str, ...]
    secondary: tuple[str, ...]
    bits: tuple[str, ...]
    alarms: tuple[str, ...]


def chart_spec(process: str, columns: Sequence[str]) -> ChartSpec:
    """The chart of a process kind; an unknown kind charts its first numeric column."""
    rmap = MAPS.get(process)
    if rmap is None:
        cols = [c for c in columns if c != "t_s" and c not in _SKIP]
        return ChartSpec(cols[0] if cols else "", "", (), (), tuple(cols[1:]), (), ())
    values = [r for r in rmap.table(Table.INPUT_REGISTER) if r.name not in _SKIP and r.unit]
    main = values[0]
    same_unit = [r for r in rmap.table(Table.HOLDING_REGISTER) if r.unit == main.unit]
    bits = [r.column for t in (Table.COIL, Table.DISCRETE_INPUT) for r in rmap.table(t)]
    return ChartSpec(
        main=main.column, unit=main.unit,
        setpoints=tuple(r.column for r in same_unit if "_sp" in r.name),
        alarm_limits=tuple(r.column for r in same_unit if "alarm" in r.name),
        secondary=tuple(r.column for r in values[1:]), bits=tuple(bits),
        alarms=tuple(b for b in bits if b.startswith("alarm_")))


def _stride(n: int, max_points: int) -> int:
    return max(1, math.ceil(n / max_points))


def plc_json(track: PlcTrack, plan: AddressPlan | None, now_unix_s: float,
             window_s: float) -> dict[str, Any]:
    """One PLC: latest values, active alarms and its charts' series (wall-clock ``t``)."""
    host = plan.host(track.name) if plan and track.name in {h.name for h in plan.hosts} else None
    out: dict[str, Any] = {"name": track.name, "ip": host.ip if host else "",
                           "process": track.process, "latest": None}
    if not track.rows or not track.clock.known:
        return out
    times = [track.clock.to_unix(r.t_s) for r in track.rows]
    hi = bisect.bisect_right(times, now_unix_s)
    lo = bisect.bisect_left(times, now_unix_s - window_s)
    if hi == 0:
        return out
    rows: list[GroundTruthRow] = track.rows[lo:hi]
    spec = chart_spec(track.process, list(track.rows[-1]))
    last = track.rows[hi - 1]
    cols = [spec.main, *spec.setpoints, *spec.alarm_limits, *spec.secondary, *spec.bits]
    cols = [c for c in cols if c in last]
    step = _stride(len(rows), MAX_POINTS)
    picked = rows[::step]
    if picked and picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    out.update(
        spec=asdict(spec), t_s=last.t_s, time_unix_s=times[hi - 1],
        latest={c: last[c] for c in last if c not in _SKIP},
        active_alarms=[a for a in spec.alarms if last.get(a, 0.0) != 0],
        series={"t": [round(track.clock.to_unix(r.t_s), 3) for r in picked],
                **{c: [r.get(c) for r in picked] for c in cols}})
    return out


def _poll_verdicts(records: Sequence[RequestRecord]) -> list[tuple[float, bool]]:
    """(start t_s, ok) per poll, as :func:`plc.metrics.plc_metrics` counts them."""
    polls: dict[int, list[RequestRecord]] = {}
    for r in records:
        if r.function not in WRITE_FUNCTIONS:
            polls.setdefault(r.poll, []).append(r)
    return [(min(r.t_s for r in rows),
             any(r.function in READ_FUNCTIONS for r in rows)
             and all(r.outcome == "ok" for r in rows))
            for _, rows in sorted(polls.items())]


def hmi_json(run: RunData, now_unix_s: float, window_s: float) -> list[dict[str, Any]]:
    """Per PLC: availability and latency p50/p95 over the window, outages, latency series."""
    if not run.hmi or not run.hmi_clock.known:
        return []
    t_hi = now_unix_s - run.hmi_clock.start_unix_s
    t_lo = t_hi - window_s
    recent = [r for r in run.hmi if t_lo <= r.t_s <= t_hi]
    out = []
    for plc in sorted({r.plc for r in recent}):
        mine = [r for r in recent if r.plc == plc]
        m = plc_metrics(plc, mine)
        outages: list[list[float]] = []
        start: float | None = None
        for t_s, ok in _poll_verdicts(mine):
            if not ok and start is None:
                start = t_s
            elif ok and start is not None:
                outages.append([start, t_s])
                start = None
        if start is not None:
            outages.append([start, t_hi])
        reads = [r for r in mine if r.function in READ_FUNCTIONS and r.outcome == "ok"]
        step = _stride(len(reads), MAX_POINTS)
        to_unix = run.hmi_clock.to_unix
        out.append({
            "plc": plc, "polls": m.polls, "availability": _num(m.availability),
            "latency_p50_ms": _num(m.latency_p50_ms), "latency_p95_ms": _num(m.latency_p95_ms),
            "outages": [[round(to_unix(a), 3), round(to_unix(b), 3)] for a, b in outages],
            "latency": {"t": [round(to_unix(r.t_s), 3) for r in reads[::step]],
                        "ms": [round(r.latency_ms, 3) for r in reads[::step]]}})
    return out


def network_json(plan: AddressPlan | None, hops: Sequence[HopRecord],
                 detections: Sequence[dict[str, Any]], now_unix_s: float) -> dict[str, Any]:
    """Hosts by zone (their switch) with real and current virtual address, hops, blocks."""
    seen = [h for h in hops if h.time_unix_s <= now_unix_s]
    virtual = {h.host: h.new_virtual for h in seen}
    zones: dict[str, list[dict[str, Any]]] = {}
    for host in plan.hosts if plan else ():
        zones.setdefault(host.switch, []).append({
            "name": host.name, "role": host.role, "ip": host.ip,
            "virtual": virtual.get(host.name), "protected": host.protected})
    blocked = []
    for det in detections:
        t = det.get("time_unix_s")
        if not isinstance(t, int | float) or t > now_unix_s:
            continue
        block_s = det.get("block_s")
        left = t + block_s - now_unix_s if isinstance(block_s, int | float) else None
        blocked.append({"src_ip": det.get("src_ip"), "src_mac": det.get("src_mac"),
                        "time_unix_s": t, "blocked_s_left": left,
                        "active": left is None or left > 0})
    return {"zones": zones, "hop_count": len(seen), "blocked": blocked,
            "hops": [{"seq": h.seq, "time_unix_s": h.time_unix_s, "host": h.host,
                      "real_ip": h.real_ip, "old_virtual": h.old_virtual,
                      "new_virtual": h.new_virtual} for h in seen[-MAX_HOPS_SHOWN:]]}


def progress_json(events: Sequence[ProgressEvent], now_unix_s: float) -> dict[str, Any] | None:
    """The runner's latest trial (number, condition, run folder), its latest stage and
    status, and the outcomes of the runs finished so far (``{"ok": k, ...}``, runs of every
    trial and condition), as of ``now_unix_s``."""
    seen = [e for e in events if e.time_unix_s <= now_unix_s]
    trials = [e for e in seen if e.event == "trial"]
    if not trials:
        return None
    cur = trials[-1]
    after = [e for e in seen if e.time_unix_s >= cur.time_unix_s]
    stages = [e.text for e in after if e.event == "stage"]
    done = [e.text for e in after if e.event == "done"]
    outcomes = {o: 0 for o in OUTCOMES}
    for e in seen:
        if e.event == "done" and e.outcome in outcomes:
            outcomes[e.outcome] += 1
    return {"run": cur.run, "total": cur.total, "label": cur.label, "raw_dir": cur.raw_dir,
            "trial": cur.trial, "condition": cur.condition,
            "stage": stages[-1] if stages else "starting", "status": done[-1] if done else "",
            "outcomes": outcomes, "finished": any(e.event == "finish" for e in seen)}


def attacks_json(attacks: Sequence[Attack], now_unix_s: float) -> list[dict[str, Any]]:
    """Each attack (running or its outcome's scalar fields) that started by ``now_unix_s``."""
    out = []
    for a in attacks:
        if a.time_unix_s > now_unix_s:
            continue
        summary = {k: v for k, v in (a.outcome or {}).items() if _scalar(v)}
        out.append({"name": a.name, "time_unix_s": a.time_unix_s,
                    "status": "running" if a.outcome is None else "done",
                    "summary": dict(list(summary.items())[:12])})
    return out


def cpu_json(samples: Sequence[tuple[float, float]], now_unix_s: float,
             window_s: float) -> dict[str, Any]:
    """CPU busy % over the window and the fidelity warning (lab.fidelity's thresholds over
    the last CPU_WARN_WINDOW_S)."""
    inside = [(t, idle) for t, idle in samples if now_unix_s - window_s <= t <= now_unix_s]
    recent = [idle for t, idle in inside if t >= now_unix_s - CPU_WARN_WINDOW_S]
    low = sum(idle < LOW_IDLE_THRESHOLD for idle in recent)
    step = _stride(len(inside), MAX_POINTS)
    return {"busy_pct": round(100 * (1 - inside[-1][1]), 1) if inside else None,
            "saturated": bool(recent) and low / len(recent) >= SATURATED_SAMPLE_SHARE,
            "series": {"t": [round(t, 3) for t, _ in inside[::step]],
                       "busy_pct": [round(100 * (1 - i), 1) for _, i in inside[::step]]}}


def build(run: RunData | None, events: Sequence[ProgressEvent],
          cpu: Sequence[tuple[float, float]], now_unix_s: float,
          window_s: float = DEFAULT_WINDOW_S, **extra: Any) -> dict[str, Any]:
    """The whole snapshot; ``extra`` (mode, replay clock...) is added as is."""
    span = run.span_unix_s() if run is not None else None
    since = max(now_unix_s - window_s, span[0]) if span else now_unix_s - window_s
    snap: dict[str, Any] = {"now_unix_s": now_unix_s, "window_s": window_s,
                            "since_unix_s": min(since, now_unix_s - 1.0),
                            "progress": progress_json(events, now_unix_s),
                            "cpu": cpu_json(cpu, now_unix_s, window_s), **extra}
    if run is None:
        return {**snap, "run": None, "plcs": [], "hmi": [], "attacks": [],
                "network": network_json(None, [], [], now_unix_s)}
    return {**snap, "run": run.label,
            "plcs": [plc_json(t, run.plan, now_unix_s, window_s) for t in run.plcs.values()],
            "hmi": hmi_json(run, now_unix_s, window_s),
            "attacks": attacks_json(run.attacks, now_unix_s),
            "network": network_json(run.plan, run.hops, run.detections, now_unix_s)}


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)
