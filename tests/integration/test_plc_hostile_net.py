"""The hostile-frame barrage on the real ICS network: the attacker host against plc1.

The default ICS (two userspace OVS switches, the l2 controller app, both PLCs, the HMI
polling every 100 ms); ``python -m attacks.modbus_fuzz`` runs inside the attacker's
namespace and sends at least 10,000 malformed frames to plc1:502 while the HMI polls. The
HMI's availability of plc1 during the barrage must stay >= 99 %, the PLC must live and its
scan cycle keep writing ground-truth rows throughout.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from attacks.synflood import flood_effect
from common.plan import ics_plan
from lab.devices import start_ics, stop_hmi
from lab.lifecycle import SWITCH_PREFIX_ENV, LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine
from plc.metrics import records_from_csv
from tests.support.ics_records import (
    hmi_clock_s,
    plc_clock_s,
    read_truth,
    wait_hmi_polls,
)

pytestmark = [pytest.mark.integration, pytest.mark.load]

FRAMES = 12_000
FRAMES_MIN = 10_000
RATE_FPS = 3_000
MAX_S = 20.0
HALF_OPEN = 100


@pytest.fixture(autouse=True)
def _own_switch_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Side-by-side labs: keep a developer's prefix, else use ours (never plain s1/s2)."""
    if not os.environ.get(SWITCH_PREFIX_ENV):
        monkeypatch.setenv(SWITCH_PREFIX_ENV, "ha")


def test_plc1_survives_the_barrage_from_the_attacker_host(tmp_path: Path) -> None:
    plan = ics_plan()
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    out = tmp_path / "fuzz.json"
    cfg = LabConfig(plan=plan, log_dir=tmp_path / "logs", engine=resolve_engine("auto"),
                    datapath=choose_datapath("auto"))
    with running_lab(cfg) as lab:
        ics = start_ics(lab, tmp_path)
        plc1 = next(d for d in ics.plcs if d.name == "plc1")
        assert ics.hmi_csv is not None
        wait_hmi_polls(ics.hmi_csv, "plc1", 10)
        hmi_start_s = hmi_clock_s(ics.hmi_csv)
        plc_start_s = plc_clock_s(plc1.state_csv)
        proc = lab.python("attacker", "attacks.modbus_fuzz", [
            "--plan", str(plan_path), "--targets", plc1.ip, "--out", str(out),
            "--frames", str(FRAMES), "--rate-fps", str(RATE_FPS), "--max-s", str(MAX_S),
            "--half-open", str(HALF_OPEN), "--seed", "7"], "modbus_fuzz.log")
        try:
            status = proc.wait(timeout=MAX_S + 20)
        finally:
            lab.stop(proc)
        hmi_end_s = hmi_clock_s(ics.hmi_csv)
        plc_end_s = plc_clock_s(plc1.state_csv)
        assert plc1.proc.poll() is None, "plc1 died under the barrage"
        stop_hmi(lab, ics)
        lab.check_healthy()
    log_text = (tmp_path / "logs" / "modbus_fuzz.log").read_text()
    assert status == 0, log_text
    outcome = json.loads(out.read_text())
    barrage = outcome["barrage"]
    with open(ics.hmi_csv, newline="") as f:
        windows = {w.window: w for w in flood_effect(records_from_csv(f), "plc1",
                                                     hmi_start_s, hmi_end_s)}
    during = windows["during"]
    truth = [r for r in read_truth(plc1.state_csv) if plc_start_s <= r["t_s"] <= plc_end_s]
    gaps = [b["t_s"] - a["t_s"] for a, b in itertools.pairwise(truth)]
    print(f"\nbarrage on the network: {barrage['frames']} frames, {barrage['connections']} "
          f"connections, {barrage['exception_replies']} exception replies in "
          f"{barrage['duration_s']:.1f} s, kinds={barrage['kinds']}\n"
          f"HMI plc1 during: availability {during.availability:.4f} over {during.polls} polls, "
          f"p50 {during.latency_p50_ms:.2f} ms, p99 {during.latency_p99_ms:.2f} ms, "
          f"max {during.latency_max_ms:.1f} ms; before: p99 "
          f"{windows['before'].latency_p99_ms:.2f} ms\n"
          f"scan: {len(truth)} rows during the barrage, max gap {max(gaps):.3f} s")
    assert barrage["frames"] >= FRAMES_MIN
    assert barrage["duration_s"] < MAX_S
    assert outcome["target"] == plc1.ip and not outcome["interrupted"]
    assert during.polls >= 10 * barrage["duration_s"] * 0.7
    assert during.availability >= 0.99
    assert len(truth) >= 10 * barrage["duration_s"] * 0.8
    assert max(gaps) < 0.5, "the scan cycle stalled"
    assert "Traceback" not in (tmp_path / "logs" / "plc1.log").read_text()
