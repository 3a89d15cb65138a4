"""``recon --plant``: the bundled water plant behaves as the default ICS, and the /22 treatment
works (8 PLCs, three process kinds, four zones) is found whole (about 25 s each here)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.plan import AddressPlan, ics_plan
from lab.devices import load_plant_plan
from lab.teardown import existing_bridges
from reporting.summary import flat_metrics
from tests.support.names import PREFIX

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _recon(plant: str, out: Path) -> tuple[Path, dict[str, dict]]:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "experiments.run", "recon", "--plant",
                          str(REPO / "plants" / plant), "--quick", "--defense", "none",
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=240, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    bundle = (out / "recon" / "latest").resolve()
    metrics = flat_metrics(json.loads((bundle / "summary.json").read_text()))
    print(f"recon --plant {plant}: {time.monotonic() - t0:.1f} s, discovery "
          f"{metrics['none:discovery_s']['mean']:.2f} s")
    return bundle, metrics


def test_recon_on_bundled_plants(tmp_path: Path) -> None:
    bundle, m = _recon("water.yaml", tmp_path / "water")
    assert AddressPlan.load(bundle / "plan.json") == ics_plan()
    for name in ("host_precision", "host_recall", "port_recall", "modbus_id_recall",
                 "attacker_modbus_success"):
        assert m[f"none:{name}"]["mean"] == 1.0, name
    assert m["none:unexpected_open_ports"]["mean"] == 0
    hosts = list(csv.DictReader(open(bundle / "recon_hosts.csv")))
    assert {h["owner"] for h in hosts} == {"hmi", "ews", "historian", "plc1", "plc2"}

    # The command docs/plants.md shows (run-by marker there).
    assert ("experiments.run recon --plant plants/treatment.yaml --quick --defense none"
            in (REPO / "docs" / "plants.md").read_text())
    bundle, m = _recon("treatment.yaml", tmp_path / "treatment")
    plan = load_plant_plan(REPO / "plants" / "treatment.yaml")
    assert plan.prefixlen == 22
    for name in ("host_precision", "host_recall", "port_recall", "modbus_id_precision",
                 "modbus_id_recall", "s7_id_precision", "s7_id_recall",
                 "attacker_modbus_success"):
        assert m[f"none:{name}"]["mean"] == 1.0, name
    hosts = list(csv.DictReader(open(bundle / "recon_hosts.csv")))
    assert {h["owner"] for h in hosts} == {h.name for h in plan.hosts} - {"attacker"}
    assert {h["owner"] for h in hosts if h["s7_identified"] == "true"} == {
        p.host for p in plan.plcs if p.protocol == "s7"}
    raw = bundle / "raw" / "trial-001" / "none"
    for spec in plan.plcs:  # each PLC ran its own kind: its ground truth has the kind's columns
        header = (raw / f"{spec.host}_state.csv").read_text().splitlines()[0]
        column = {"tank": "level_cm", "pressure": "pressure_bar",
                  "dosing": "chlorine_mg_l"}[spec.process]
        assert column in header.split(","), (spec.host, header)
    assert all(m[f"none:hmi_{p.host}_availability"]["mean"] == 1.0 for p in plan.plcs)
    assert not {f"{PREFIX}{z.name}" for z in plan.switches} & existing_bridges()
