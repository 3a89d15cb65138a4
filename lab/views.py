"""What the lab-mode CLI prints: the pure half (no I/O, no Mininet, no root).

Every function here takes text or plain records already read from the run folder and returns
lines to print, so the ``mininet>`` commands (:mod:`lab.commands`) stay thin and these
are unit-tested on their own:

- ``mtd``: the real <-> virtual mapping and the last hops, from the defense's hop logs
  (:class:`common.hoplog.HopRecord`);
- ``plc``: each PLC's process state from the last rows of its ground-truth CSV, named and
  united by the register map (:mod:`plc.registers`);
- ``hmi``: the HMI's availability and latency per PLC (:class:`plc.metrics.PlcMetrics`);
- ``detector``: the sources the scan detector blocked (its detect log, JSON lines);
- ``attack``: a readable summary of an attack's outcome JSON.

What it cannot do: tell a hop log that was never written from one of a defense that has not
hopped yet (both are empty), or show a PLC whose CSV has no complete row yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from common.groundtruth import GroundTruthRow
from common.hoplog import HopRecord
from plc.metrics import PlcMetrics
from plc.registers import MAPS, RegisterMap, Table
from reporting.bundle import cell_value

TREND_WINDOW_S = 5.0
DEFAULT_HOP_LOG_LINES = 10


# --- generic --------------------------------------------------------------------------
def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Left-aligned text columns, a dashed rule under the headers; no trailing spaces."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]]


def _cell(value: object) -> str:
    return str(cell_value(value, missing="-", digits=4, fixed_from=1e4))


# --- mtd ------------------------------------------------------------------------------
def _float_or_none(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def format_mtd(defense: str, hops: Sequence[HopRecord], now_unix_s: float) -> list[str]:
    """The current real <-> virtual mapping: one row per protected host, latest hop wins."""
    if not hops:
        return [f"mtd: {defense} is running; no hop logged yet"]
    latest: dict[str, HopRecord] = {}
    counts: dict[str, int] = {}
    for hop in hops:
        latest[hop.host] = hop
        counts[hop.host] = counts.get(hop.host, 0) + 1
    rows = []
    for host in sorted(latest):
        hop = latest[host]
        age = f"{max(0.0, now_unix_s - hop.time_unix_s):.1f}"
        rows.append((host, hop.real_ip, hop.new_virtual, age, counts[host]))
    table = format_table(("host", "real", "virtual now", "since_s", "hops"), rows)
    return [f"mtd: {defense}, {len(hops)} hop(s) so far", *table]


def format_mtd_log(hops: Sequence[HopRecord], n_lines: int = DEFAULT_HOP_LOG_LINES) -> list[str]:
    """The last ``n_lines`` hops, oldest first."""
    if not hops:
        return ["mtd log: no hop logged yet"]
    rows = [(h.seq, h.t_s, h.host, h.real_ip, h.old_virtual or "(first)", h.new_virtual)
            for h in hops[-n_lines:]]
    return format_table(("seq", "t_s", "host", "real", "old virtual", "new virtual"), rows)


# --- plc ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlcView:
    """A PLC's latest ground-truth row and, for trends, the row about TREND_WINDOW_S before.

    earlier: None when the rows do not reach back that far.
    """

    name: str
    ip: str
    process: str
    row: GroundTruthRow
    earlier: GroundTruthRow | None


def plc_view(name: str, ip: str, process: str,
             rows: Sequence[GroundTruthRow]) -> PlcView | None:
    """A view from the last ground-truth rows, oldest first; None without a row."""
    if not rows:
        return None
    last = rows[-1]
    target = last.t_s - TREND_WINDOW_S
    earlier = next((r for r in reversed(rows) if r.t_s <= target), None)
    return PlcView(name=name, ip=ip, process=process, row=last, earlier=earlier)


def _value(reg_column: str, unit: str, row: GroundTruthRow) -> str:
    value = row.get(reg_column)
    if value is None:
        return "?"
    shown = f"{value:.2f}".rstrip("0").rstrip(".") if unit else f"{value:g}"
    return f"{shown} {unit}" if unit else shown


def _bit(row: GroundTruthRow, column: str) -> bool:
    return row.get(column, 0.0) != 0


def format_plc(view: PlcView) -> list[str]:
    """Process values (with their change over the trend window), coils, setpoints, alarms."""
    rmap: RegisterMap | None = MAPS.get(view.process)
    head = f"{view.name} ({view.ip}, {view.process}) t={view.row.t_s:.1f} s"
    if rmap is None:
        return [head] + [f"  {k} = {v:g}" for k, v in view.row.items() if k != "t_s"]
    lines = [head]
    values = []
    for reg in rmap.table(Table.INPUT_REGISTER):
        if reg.name in ("process_id", "scan_count"):
            continue
        text = f"{reg.name} {_value(reg.column, reg.unit, view.row)}"
        if view.earlier is not None:
            try:
                delta = view.row[reg.column] - view.earlier[reg.column]
                text += f" ({delta:+.2f} in {view.row.t_s - view.earlier.t_s:.0f} s)"
            except KeyError:
                pass
        values.append(text)
    lines.append("  process:   " + ", ".join(values))
    coils = [f"{reg.name}={'on' if _bit(view.row, reg.column) else 'off'}"
             for reg in rmap.table(Table.COIL)]
    lines.append("  coils:     " + ", ".join(coils))
    setpoints = [f"{reg.name} {_value(reg.column, reg.unit, view.row)}"
                 for reg in rmap.table(Table.HOLDING_REGISTER)]
    lines.append("  setpoints: " + ", ".join(setpoints))
    alarms = [reg.name for reg in rmap.table(Table.DISCRETE_INPUT) if _bit(view.row, reg.column)]
    lines.append("  alarms:    " + (", ".join(alarms) if alarms else "none"))
    return lines


# --- hmi ------------------------------------------------------------------------------
def format_hmi(metrics: Sequence[PlcMetrics], elapsed_s: float | None) -> list[str]:
    """Availability, latency percentiles, outages and reconnects per PLC."""
    if not metrics:
        return ["hmi: no poll recorded yet"]
    rows = [(m.plc, m.polls, m.availability, m.latency_p50_ms, m.latency_p95_ms,
             m.latency_max_ms, m.longest_outage_s, m.reconnects) for m in metrics]
    since = "" if elapsed_s is None else f" over {elapsed_s:.0f} s"
    table = format_table(("plc", "polls", "availability", "p50_ms", "p95_ms", "max_ms",
                          "longest_outage_s", "reconnects"), rows)
    return [f"hmi: polls of every PLC{since}", *table]


# --- detector -------------------------------------------------------------------------
def format_detections(records: Sequence[dict[str, Any]], now_unix_s: float) -> list[str]:
    """Every detection (a blocked source), whether its block still holds, and why."""
    if not records:
        return ["detector: running; no source blocked so far"]
    rows = []
    for r in records:
        t = _float_or_none(r.get("time_unix_s"))
        block_s = _float_or_none(r.get("block_s"))
        if t is None or block_s is None:
            status = "?"
        else:
            left_s = t + block_s - now_unix_s
            status = f"blocked {left_s:.0f} s more" if left_s > 0 else "expired"
        why = (f"{r.get('distinct_dsts', '?')} dsts / {r.get('distinct_ports', '?')} ports "
               f"> {r.get('threshold', '?')}")
        rows.append((r.get("src_ip") or "-", r.get("src_mac", "?"), why, status))
    table = format_table(("src_ip", "src_mac", "why", "status"), rows)
    return [f"detector: {len(records)} source(s) blocked", *table]


# --- attack ---------------------------------------------------------------------------
def summarize_outcome(name: str, outcome: dict[str, Any] | None, exit_status: int | None,
                      note: str = "") -> list[str]:
    """A few readable lines about an attack's outcome JSON (None: no outcome was written)."""
    status = "did not finish" if exit_status is None else f"exit status {exit_status}"
    if outcome is None:
        return [f"attack {name}: {status}, no outcome written{('; ' + note) if note else ''}"]
    duration = outcome.get("duration_s")
    head = f"attack {name}: {status}"
    if isinstance(duration, (int, float)):
        head += f" after {duration:.2f} s"
    if outcome.get("interrupted"):
        head += f" (interrupted by {outcome.get('interrupt_signal') or 'a signal'})"
    if note:
        head += f"; {note}"
    lines = [head]
    detail = _DETAILS.get(name, _generic_details)
    lines += ["  " + d for d in detail(outcome)]
    for err in outcome.get("errors") or []:
        lines.append(f"  error: {err}")
    return lines


def _recon_details(o: dict[str, Any]) -> list[str]:
    findings = o.get("findings") or []
    out = [f"targets: {len(o.get('targets') or [])} address(es); attacker: "
           f"{', '.join(o.get('attacker_addresses') or []) or '?'}"]
    stages = [f"{s.get('name')} {s.get('status')} {float(s.get('duration_s') or 0):.1f} s"
              for s in o.get("stages") or []]
    if stages:
        out.append("stages: " + "; ".join(stages))
    out.append(f"hosts found: {len(findings)}")
    for f in findings:
        ports = ", ".join(str(p) for p in f.get("open_ports") or []) or "no open port"
        text = f"  {f.get('address')}  mac {f.get('mac') or '?'}  open: {ports}"
        for svc in f.get("services") or []:
            details = svc.get("details") or {}
            for key, value in details.items():
                if "modbus" in key:
                    text += f"  [{_one_line(value)}]"
        out.append(text)
    return out


def _one_line(value: object, width: int = 70) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _inject_details(o: dict[str, Any]) -> list[str]:
    out = [f"target {o.get('target')}:{o.get('port')} unit {o.get('unit_id')}, process "
           f"{o.get('process') or '?'}",
           f"writes: {o.get('writes_ok', 0)} accepted, {o.get('writes_refused', 0)} refused"]
    for w in o.get("writes") or []:
        if isinstance(w, dict):
            out.append(f"  {w.get('name', '?')} = {w.get('value', '?')}")
    for table, values in (o.get("readback") or {}).items():
        out.append(f"read back {table}: {values}")
    return out


def _flood_details(o: dict[str, Any]) -> list[str]:
    flood = o.get("flood") or {}
    keys = ("packets", "rate_pps", "duration_s", "sources_used", "send_errors", "stopped_by")
    shown = ", ".join(f"{k} {flood[k]}" for k in keys if k in flood)
    return [f"target {o.get('target')}:{o.get('port')}, spoofed from {o.get('spoof_cidr')} "
            f"({o.get('spoof_pool_size')} addresses)", shown or f"flood: {flood}"]


def _iphop_details(o: dict[str, Any]) -> list[str]:
    return [f"real address {o.get('real_address')}, {len(o.get('hops_applied') or [])} hop(s)"
            f" applied, sources used: {', '.join(o.get('sources_used') or []) or 'none'}",
            f"probes: {o.get('probe_count', 0)}, results: {o.get('states') or {}}",
            f"host restored: {o.get('host_restored')}"]


def _mitm_details(o: dict[str, Any]) -> list[str]:
    victims = ", ".join(f"{v.get('name')} {v.get('ip')}" for v in o.get("victims") or [])
    restore = o.get("restore") or {}
    return [f"victims: {victims}",
            f"intercepted frames: {o.get('intercepted_frames') or {}}; Modbus exchanges: "
            f"{o.get('exchange_count', 0)}",
            f"tamper: {o.get('tamper')}",
            f"ARP caches restored: {restore.get('verified')}; host restored: "
            f"{o.get('host_restored')}"]


def _ctrl_fuzz_details(o: dict[str, Any]) -> list[str]:
    return [f"frames sent: {o.get('frames_sent_total', 0)} of {o.get('frames_planned', 0)} "
            f"on {o.get('iface')}, {float(o.get('achieved_fps') or 0):.0f} frames/s",
            f"send errors: {o.get('send_errors') or {}}"]


def _fuzz_details(o: dict[str, Any]) -> list[str]:
    barrage = o.get("barrage") or {}
    keys = ("frames", "connections", "connect_failures", "dropped_by_target")
    shown = ", ".join(f"{k} {barrage[k]}" for k in keys if k in barrage)
    return [f"target {o.get('target')}:{o.get('port')}", shown or "barrage: (no figures)"]


_COMMON = {"attack", "parameters", "targets", "started_at", "ended_at", "duration_s",
           "interrupted", "interrupt_signal", "errors"}


def _generic_details(o: dict[str, Any]) -> list[str]:
    return [f"{k}: {_one_line(v)}" for k, v in o.items()
            if k not in _COMMON and isinstance(v, (str, int, float, bool))]


_DETAILS = {"recon": _recon_details, "inject": _inject_details, "synflood": _flood_details,
            "iphop": _iphop_details, "mitm": _mitm_details, "ctrl_fuzz": _ctrl_fuzz_details,
            "modbus_fuzz": _fuzz_details}
