"""Hostile traffic against a PLC on 127.0.0.1 while the HMI polls it.

A bounded, paced barrage (30,000 malformed frames at about 4,000 per second, 15 s at most)
of random bytes, truncated MBAP headers, lying length fields, bad protocol ids, unknown
function codes, out-of-range addresses and counts, wrong unit ids and pipelining floods,
plus 200 connections held open silent or with half a header, sent by the library part of
``attacks.modbus_fuzz`` (no namespace check there). The scan cycle must not stop and the HMI
must keep >= 99 % availability. All traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import subprocess
import sys
import time

import pytest

from attacks.modbus_fuzz import BarrageConfig, run_barrage
from plc.metrics import plc_metrics, records_from_csv
from tests.support.plc_process import LOOPBACK, ROOT, PlcProcess

pytestmark = pytest.mark.load

FRAMES_MIN = 10_000
FRAMES_TARGET = 30_000
FRAMES_PER_S = 4_000
BARRAGE_MAX_S = 15.0
HALF_OPEN = 200


def test_plc_survives_a_barrage_of_malformed_frames_while_the_hmi_polls(tmp_path):
    plc = PlcProcess(tmp_path, "tank", "--cycle-ms", "100")
    out = tmp_path / "hmi.csv"
    hmi_proc = subprocess.Popen(
        [sys.executable, "-m", "plc.hmi", "--plc", f"plc1={LOOPBACK}:{plc.port}",
         "--period-ms", "50", "--timeout-ms", "500", "--duration-s", "60", "--out",
         str(out)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                not out.exists() or out.read_text().count("\n") < 10):
            time.sleep(0.05)  # the HMI is connected and polling
        started = time.monotonic()
        barrage = asyncio.run(run_barrage(BarrageConfig(
            host=LOOPBACK, port=plc.port, frames=FRAMES_TARGET, rate_fps=FRAMES_PER_S,
            max_s=BARRAGE_MAX_S, half_open=HALF_OPEN, seed=7)))
        barrage_s = time.monotonic() - started
        time.sleep(0.3)
        assert plc.proc.poll() is None, "the PLC died under the barrage"
        hmi_proc.send_signal(signal.SIGTERM)
        assert hmi_proc.wait(10) == 0
        assert plc.stop() == 0
    finally:
        if hmi_proc.poll() is None:
            hmi_proc.kill()
            hmi_proc.wait()
        plc.stop()

    with open(out, newline="") as f:
        m = plc_metrics("plc1", records_from_csv(f))
    truth = plc.rows()
    gaps = [b["t_s"] - a["t_s"] for a, b in itertools.pairwise(truth)]
    log = plc.stderr_path.read_text()
    guard = re.search(r"guard=GuardStats\((.*)\)", log)
    print(f"\nbarrage: {barrage.frames} frames, {barrage.connections} connections in "
          f"{barrage_s:.1f} s, kinds={barrage.kinds}\nHMI: availability "
          f"{m.availability:.4f} over {m.polls} polls, p50 {m.latency_p50_ms:.2f} ms, "
          f"p99 {m.latency_p99_ms:.2f} ms, max {m.latency_max_ms:.1f} ms, "
          f"reconnects {m.reconnects}\nscan: {len(truth)} rows, max gap {max(gaps):.3f} s"
          f"\nguard: {guard.group(1) if guard else '?'}")
    assert barrage.frames >= FRAMES_MIN
    assert barrage_s < BARRAGE_MAX_S + 3
    assert m.polls >= 20 * barrage_s * 0.8
    assert m.availability >= 0.99
    assert max(gaps) < 0.5, "the scan cycle stalled"
    assert truth[-1]["scan_count"] == len(truth)
    assert "Traceback" not in log
