"""Hostile traffic at the controller: ≥ 10,000 malformed frames from the attacker reach the
controller as packet-ins while the HMI polls the PLCs. Figures printed with -s."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from common.plan import ics_plan
from lab.devices import start_ics, stop_hmi
from lab.lifecycle import LabConfig, running_lab
from lab.platform import choose_datapath, resolve_engine

pytestmark = pytest.mark.integration

FRAMES = 12_000


@pytest.mark.parametrize("engine", ["ryu", "os-ken"])
def test_controller_survives_a_packet_in_barrage(tmp_path: Path, engine: str) -> None:
    plan = ics_plan()
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    cfg = LabConfig(plan=plan, log_dir=tmp_path, engine=resolve_engine(engine),
                    datapath=choose_datapath("auto"))
    with running_lab(cfg) as lab:
        ics = start_ics(lab, tmp_path)
        time.sleep(1.0)
        t0 = time.monotonic()
        proc = lab.python("attacker", "attacks.ctrl_fuzz", [
            "--plan", str(plan_path), "--targets", plan.subnet, "--frames", str(FRAMES),
            "--rate-fps", "2500", "--max-s", "30", "--out", str(tmp_path / "fuzz.json")],
            "ctrl_fuzz.log")
        assert proc.wait(timeout=60) == 0, (tmp_path / "ctrl_fuzz.log").read_text()
        barrage_s = time.monotonic() - t0
        time.sleep(1.0)
        alive = lab.controller_alive()
        metrics = {m.plc: m for m in stop_hmi(lab, ics)}
    outcome = json.loads((tmp_path / "fuzz.json").read_text())
    log_text = (tmp_path / "controller.log").read_text()
    stats_line = re.search(r"controller stats app=\S+ (\{.*\})", log_text)
    stats = json.loads(stats_line.group(1)) if stats_line else {}
    errors = [ln for ln in log_text.splitlines()
              if "HANDLER EXCEPTION" in ln or "Traceback" in ln]
    availability = min(m.availability for m in metrics.values())
    print(f"\n{engine}: frames sent {outcome['frames_sent_total']} in {barrage_s:.1f} s, "
          f"controller packet-ins {stats.get('packet_ins')}, parse errors (handled, counted) "
          f"{stats.get('parse_errors')}, handler exceptions {stats.get('handler_exceptions')}, "
          f"log exceptions {len(errors)}, HMI availability {availability:.4f} "
          f"(p95 {max(m.latency_p95_ms for m in metrics.values()):.2f} ms); not sent "
          f"(kernel refused): {outcome['send_errors']}")
    assert outcome["frames_sent_total"] >= 10_000
    assert alive, "the controller died"
    assert not errors, errors[:3]
    assert stats.get("handler_exceptions") == 0
    assert stats.get("packet_ins", 0) >= 10_000
    assert availability >= 0.99
