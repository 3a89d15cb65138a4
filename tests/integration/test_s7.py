"""S7comm on the real network: an S7 PLC next to a Modbus one, polled by the HMI, read by
python-snap7's own client from another host (values equal to the ground truth), written by
the injection attack, and still serving the HMI through 10k malformed S7 frames."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from common.cli import wait_until
from common.plant import parse_plant
from common.requestlog import read as read_requests
from lab.devices import start_ics, stop_hmi
from lab.hostrun import run_in_host
from lab.lifecycle import LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine
from plc.metrics import records_from_csv
from plc.program import process_kinds
from plc.registers import TANK_MAP

pytestmark = pytest.mark.integration

PLANT = {
    "name": "s7test", "subnet": "10.0.0.0/24", "zones": [{"name": "s1"}],
    "hosts": [{"name": "hmi", "role": "hmi", "address": "10.0.0.10", "zone": "s1",
               "authorized": True},
              {"name": "attacker", "role": "attacker", "address": "10.0.0.66", "zone": "s1"},
              {"name": "plc1", "role": "plc", "address": "10.0.0.21", "zone": "s1"},
              {"name": "plc2", "role": "plc", "address": "10.0.0.22", "zone": "s1"}],
    "plcs": [{"host": "plc1", "process": {"kind": "tank"}},
             {"host": "plc2", "protocol": "s7", "process": {"kind": "tank"}}],
    "hmis": [{"host": "hmi", "polls": "all", "period_ms": 100}],
}
# Runs inside the HMI host: python-snap7's own client reads DB1 (the input registers).
READ_DB1 = ("import json, snap7; c = snap7.client.Client(); c.connect('10.0.0.22', 0, 2, 102); "
            "d = c.db_read(1, 0, 12); print(json.dumps([int.from_bytes(d[i:i + 2], 'big') "
            "for i in range(0, 12, 2)]))")


def _hmi_reads_ok(hmi_csv: Path) -> bool:
    """The HMI has read both PLCs' input registers (so the network and both servers are up)."""
    text = hmi_csv.read_text() if hmi_csv.exists() else ""
    ok = {r.plc for r in records_from_csv(text.splitlines())
          if r.function == "read_input_registers" and r.outcome == "ok"}
    return ok == {"plc1", "plc2"}


def _row_with_scan(state_csv: Path, scan: int) -> dict[str, str]:
    lines = state_csv.read_text().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("scan_count") == str(scan):
            return row
    raise AssertionError(f"scan {scan} not in the ground truth")


def test_s7_plc_polled_read_injected_and_fuzzed(tmp_path: Path) -> None:
    plan = parse_plant(PLANT, process_kinds())
    cfg = LabConfig(plan=plan, log_dir=tmp_path, engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"))
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    with running_lab(cfg) as lab:
        ics = start_ics(lab, tmp_path)
        plc2 = next(d for d in ics.plcs if d.name == "plc2")
        assert plc2.protocol == "s7" and plc2.port == 102
        assert ics.hmi_csv is not None
        assert wait_until(lambda: _hmi_reads_ok(ics.hmi_csv), 30.0), "the HMI never read plc2"
        # An independent client of the protocol, in another host, against the ground truth.
        out = lab.host("hmi").cmd(f'{sys.executable} -c "{READ_DB1}"')
        values = json.loads(out.strip().splitlines()[-1])
        scan = values[TANK_MAP.get("scan_count").address]
        row = _row_with_scan(tmp_path / "plc2_state.csv", scan)
        level = TANK_MAP.get("level")
        assert values[0] == TANK_MAP.process_id
        assert values[level.address] == level.to_raw(float(row["level_cm"]))

        fuzz = run_in_host(lab, "attacker", "attacks.s7_fuzz", [
            "--plan", str(plan_path), "--targets", "10.0.0.22", "--out",
            str(tmp_path / "fuzz.json"), "--frames", "10000", "--rate-fps", "3000",
            "--max-s", "60"], "fuzz.log", 90)
        fuzz.check()
        barrage = fuzz.outcome(tmp_path / "fuzz.json")["barrage"]
        inject = run_in_host(lab, "attacker", "attacks.inject", [
            "--plan", str(plan_path), "--targets", "10.0.0.22", "--out",
            str(tmp_path / "inject.json"), "--engine", "s7", "--port", "102", "--auto-off",
            "--pump-on"], "inject.log", 30)
        inject.check()
        injected = inject.outcome(tmp_path / "inject.json")
        assert plc2.proc.poll() is None, "the S7 PLC died"
        metrics = {m.plc: m for m in stop_hmi(lab, ics)}
        lab.check_healthy()
    print(f"s7 fuzz: {barrage['frames']} frames, {barrage['connections']} connections in "
          f"{barrage['duration_s']} s; HMI availability plc2 {metrics['plc2'].availability:.4f}"
          f" ({metrics['plc2'].polls} polls), p95 {metrics['plc2'].latency_p95_ms:.2f} ms")
    assert barrage["frames"] >= 10_000 and barrage["connect_failures"] == 0
    assert metrics["plc2"].availability >= 0.99 and metrics["plc1"].availability >= 0.99
    assert injected["writes_ok"] == 2
    # Success counted at the target: the PLC's own request log has the attacker's writes.
    writes = [r for r in read_requests([tmp_path / "plc2_requests.jsonl"])
              if r.client_ip == "10.0.0.66" and r.function == 0x05 and not r.exception_code]
    assert len(writes) == 2
    state = (tmp_path / "plc2_state.csv").read_text().splitlines()
    header, last = state[0].split(","), state[-1].split(",")
    assert last[header.index("auto_mode")] == "0" and last[header.index("pump_on")] == "1"
