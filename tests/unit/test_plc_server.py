"""The PLC server and the HMI end to end on 127.0.0.1, and their command lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from plc import hmi
from plc.metrics import READ_FUNCTIONS, plc_metrics, records_from_csv
from plc.registers import PRESSURE_MAP, TANK_MAP
from tests.support.plc_process import LOOPBACK, ROOT, PlcProcess


@pytest.fixture
def tank_plc(tmp_path):
    plc = PlcProcess(tmp_path, "tank", "--cycle-ms", "50")
    yield plc
    plc.stop()


def test_hmi_reads_changing_values_and_a_pump_write_changes_the_tank(tank_plc, tmp_path):
    out = tmp_path / "hmi.csv"
    writes = tmp_path / "writes.json"
    pump = TANK_MAP.get("pump_on")
    writes.write_text(json.dumps([{"t_s": 1.0, "plc": "plc1", "table": "coil",
                                   "address": pump.address, "value": 1}]))
    assert hmi.main(["--plc", f"plc1={LOOPBACK}:{tank_plc.port}", "--period-ms", "50",
                     "--duration-s", "2.5", "--out", str(out), "--writes",
                     str(writes)]) == 0
    with open(out, newline="") as f:
        records = records_from_csv(f)
    level = TANK_MAP.get("level")
    level_reads = [r for r in records if r.function == "read_input_registers"
                   and r.count == TANK_MAP.count(level.table)]
    levels = [int(r.values.split()[level.address]) for r in level_reads]
    assert len(set(levels)) > 10, "the HMI should see the level move"
    (write,) = [r for r in records if r.function == "write_coil"]
    assert write.outcome == "ok" and write.values == "1" and 0.95 < write.t_s < 1.3
    after = [int(r.values.split()[pump.address]) for r in records
             if r.function == "read_coils" and r.t_s > write.t_s]
    assert after and all(after)
    m = plc_metrics("plc1", records)
    assert m.availability == 1.0 and m.polls >= 40 and m.reconnects == 0
    assert {r.function for r in records} >= set(READ_FUNCTIONS)

    assert tank_plc.stop() == 0
    truth = tank_plc.rows()
    csv_text = tank_plc.state_csv.read_text()
    # No torn last line: every line past the header is a row, and the last is the last scan.
    assert len(truth) == len(csv_text.splitlines()) - 1
    assert truth[-1]["scan_count"] == len(truth)
    before = [r for r in truth if r["pump_on"] == 0]
    after_rows = [r for r in truth if r["pump_on"] == 1]
    assert before and after_rows and before[-1]["t_s"] < after_rows[0]["t_s"]
    # draining before the write, filling after it
    assert before[-1]["level_cm"] < before[0]["level_cm"]
    assert after_rows[-1]["level_cm"] > after_rows[0]["level_cm"]
    assert after_rows[-1]["inflow_lps"] == 50.0


def test_server_runs_for_duration_and_sigint_stops_cleanly(tmp_path):
    plc = PlcProcess(tmp_path, "pressure", "--duration-s", "0.6", "--cycle-ms", "20")
    assert plc.proc.wait(10) == 0
    rows = plc.rows()
    assert 15 <= len(rows) <= 40
    assert rows[0]["pressure_sp_bar"] == PRESSURE_MAP.get("pressure_sp").default
    plc.stop()
    plc = PlcProcess(tmp_path, "pressure")
    assert plc.stop(signal.SIGINT) == 0
    assert "Traceback" not in plc.stderr_path.read_text()


def test_hmi_records_outages_and_reconnects(tmp_path):
    """A PLC that goes away and comes back: connection errors, then a reconnect."""
    plc = PlcProcess(tmp_path, "tank")
    out = tmp_path / "hmi.csv"
    hmi_proc = subprocess.Popen(
        [sys.executable, "-m", "plc.hmi", "--plc", f"plc1={LOOPBACK}:{plc.port}",
         "--period-ms", "50", "--timeout-ms", "200", "--duration-s", "30", "--out",
         str(out)], cwd=ROOT, stderr=subprocess.DEVNULL)
    plc2 = None
    try:
        time.sleep(1.0)
        assert plc.stop() == 0
        time.sleep(0.5)
        plc2 = PlcProcess(tmp_path, "tank", "--port", str(plc.port))
        time.sleep(1.0)
        hmi_proc.send_signal(signal.SIGTERM)
        assert hmi_proc.wait(10) == 0
    finally:
        for p in (plc, plc2):
            if p is not None:
                p.stop()
        if hmi_proc.poll() is None:
            hmi_proc.kill()
            hmi_proc.wait()
    with open(out, newline="") as f:
        m = plc_metrics("plc1", records_from_csv(f))
    assert m.reconnects == 1 and m.connection_errors >= 3
    assert 0.4 < m.longest_outage_s < 2.0
    assert 0.3 < m.availability < 0.95


def one_line_exit_2(module: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("args", [
    [],
    ["--process", "boiler"],
    ["--process", "tank", "--port", "70000"],
    ["--process", "tank", "--port", "abc"],
    ["--process", "tank", "--cycle-ms", "0"],
    ["--process", "tank", "--host", "plc.example"],
    ["--process", "tank", "--unit-id", "300"],
    ["--process", "tank", "--state-csv", "/nonexistent-dir/x.csv"],
    ["--process", "tank", "--bogus"],
])
def test_server_bad_arguments(args):
    one_line_exit_2("plc.server", *args)


@pytest.mark.parametrize("args,writes", [
    ([], None),
    (["--plc", "plc1", "--duration-s", "1"], None),
    (["--plc", "plc1=10.0.0.300", "--duration-s", "1"], None),
    (["--plc", "plc1=127.0.0.1:99999", "--duration-s", "1"], None),
    (["--plc", "a=127.0.0.1", "--plc", "a=127.0.0.1:503", "--duration-s", "1"], None),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "-1"], None),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "1", "--writes", "/nonexistent.json"],
     None),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "1"], "{not json"),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "1"],
     '[{"t_s": 1, "plc": "plc9", "table": "coil", "address": 0, "value": 1}]'),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "1"],
     '[{"t_s": 1, "plc": "plc1", "table": "input_register", "address": 0, "value": 1}]'),
    (["--plc", "plc1=127.0.0.1", "--duration-s", "1"],
     '[{"t_s": 1, "plc": "plc1", "table": "coil", "address": 0, "value": 2}]'),
])
def test_hmi_bad_arguments(tmp_path, args, writes):
    extra = ["--out", str(tmp_path / "out.csv")] if args else []
    if writes is not None:
        (tmp_path / "w.json").write_text(writes)
        extra += ["--writes", str(tmp_path / "w.json")]
    one_line_exit_2("plc.hmi", *args, *extra)


def test_hmi_bad_out_path():
    one_line_exit_2("plc.hmi", "--plc", "plc1=127.0.0.1", "--duration-s", "1", "--out",
                    "/nonexistent-dir/out.csv")
