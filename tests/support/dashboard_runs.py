"""A synthetic run folder and bundle for the dashboard (files as a lab writes them).

Every file gets the modification time the real writer would leave (its last row's time), so
the dashboard places rows on the wall clock as it does for a real run.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import hoplog
from common.hoplog import HopRecord
from common.plan import plan_for
from dashboard import progresslog
from plc.metrics import RequestRecord
from plc.registers import TANK_MAP, Table

T0_UNIX_S = 1_700_000_000.0
DURATION_S = 60.0


def tank_columns() -> list[str]:
    return ["t_s", *(r.column for t in Table for r in TANK_MAP.table(t)
                     if r.name not in ("process_id", "scan_count"))]


def level_at(t_s: float) -> float:
    """The synthetic tank level: rises 2 cm/s from 100 cm (crosses the 180 cm alarm)."""
    return 100.0 + 2.0 * t_s


def write_run(folder: Path, t0_unix_s: float = T0_UNIX_S, hops: int = 6,
              duration_s: float = DURATION_S) -> list[HopRecord]:
    """A run folder (controller.log, plan, one tank PLC, HMI, rhm hops); its hops."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = plan_for("ics")
    plan.save(folder / "plan.json")
    (folder / "controller.log").write_text("controller ready\n")
    cols = tank_columns()
    lines = [",".join(cols)]
    for i in range(int(duration_s * 10) + 1):
        t = i / 10
        level = level_at(t)
        row = {c: 0.0 for c in cols}
        row.update(t_s=t, level_cm=level, level_high_sp_cm=160.0, level_low_sp_cm=40.0,
                   level_hh_alarm_cm=180.0, level_ll_alarm_cm=20.0, valve_open=1.0,
                   pump_on=1.0, alarm_high_high=float(level >= 180.0))
        lines.append(",".join(f"{row[c]:g}" for c in cols))
    csv_path = folder / "plc1_state.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    os.utime(csv_path, (t0_unix_s + duration_s, t0_unix_s + duration_s))
    hmi = [",".join(RequestRecord.columns())]
    for poll in range(int(duration_s)):
        ok = not 20 <= poll < 25  # a five-second outage
        rec = RequestRecord(float(poll), "plc1", poll, "read_input_registers", 0, 6,
                            1.0 + poll % 3, "ok" if ok else "timeout")
        hmi.append(",".join(str(v) for v in rec.as_row()))
    hmi_path = folder / "hmi_requests.csv"
    hmi_path.write_text("\n".join(hmi) + "\n")
    os.utime(hmi_path, (t0_unix_s + duration_s - 1, t0_unix_s + duration_s - 1))
    records = []
    for seq in range(hops):
        records.append(HopRecord(time_unix_s=t0_unix_s + 5 + seq * 8, t_s=5.0 + seq * 8,
                                 seq=seq, host="plc1", real_ip=plan.host("plc1").ip,
                                 old_virtual=None if seq == 0 else f"10.0.0.{100 + seq}",
                                 new_virtual=f"10.0.0.{101 + seq}"))
    hoplog.write(folder / "hops_rhm.jsonl", records)
    return records


def write_bundle(folder: Path) -> dict[str, list[HopRecord]]:
    """A bundle of one trial with conditions none and rhm; the hops of each run."""
    (folder / "raw").mkdir(parents=True)
    plan_for("ics").save(folder / "plan.json")
    (folder / "manifest.json").write_text("{}")
    none = write_run(folder / "raw/trial-001/none", T0_UNIX_S, hops=0)
    rhm = write_run(folder / "raw/trial-001/rhm", T0_UNIX_S + 70, hops=6)
    log = folder / "raw" / progresslog.PROGRESS_LOG
    for run, (cond, t) in enumerate((("none", T0_UNIX_S), ("rhm", T0_UNIX_S + 70)), start=1):
        progresslog.append(log, "trial", t - 0.5, run=run, total=2,
                           label=f"trial 1 [{cond}]", raw_dir=f"raw/trial-001/{cond}")
        progresslog.append(log, "stage", t + 1, run=run, total=2, label=f"trial 1 [{cond}]",
                           text="reconnaissance")
        progresslog.append(log, "done", t + DURATION_S, run=run, total=2,
                           label=f"trial 1 [{cond}]", text="ok")
    return {"none": none, "rhm": rhm}
