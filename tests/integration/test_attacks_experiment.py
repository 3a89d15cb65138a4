"""``attacks --quick`` end to end through the CLI: every attack against the real ICS next to
a baseline, the bundle, and what a user would look at first (the tank leaves its band under
injection, the MITM saw the HMI's Modbus traffic, nothing of the attacks is left behind)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.attacks_exp import CONDITIONS
from lab.lifecycle import SWITCH_PREFIX_ENV
from lab.teardown import existing_bridges
from reporting.summary import flat_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 150.0


def test_attacks_quick_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = os.environ.get(SWITCH_PREFIX_ENV) or "hh"  # never plain s1/s2 beside a lab
    monkeypatch.setenv(SWITCH_PREFIX_ENV, prefix)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "experiments.run", "attacks", "--quick",
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT_S, check=False)
    wall_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr + res.stdout[-2000:]
    bundle = (tmp_path / "attacks" / "latest").resolve()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["complete"]
    status = {t["condition"]: t["status"] for t in manifest["trials"]}
    assert status == {c: "ok" for c in CONDITIONS}, manifest["trials"]
    assert all(manifest["validity"].values()), manifest["validity"]

    m = {k: v["mean"] for k, v in flat_metrics(json.loads(
        (bundle / "summary.json").read_text())).items()}
    print(f"\nattacks --quick in {wall_s:.0f} s: HMI availability "
          + ", ".join(f"{c} {m[f'{c}:hmi_availability']:.3f}" for c in CONDITIONS)
          + "; p95 " + ", ".join(f"{c} {m[f'{c}:hmi_latency_p95_ms']:.1f} ms"
                                 for c in CONDITIONS)
          + f"; inject: {m['inject:inject_writes_accepted']:.0f} writes, "
          f"+{m['inject:tank_max_over_high_sp_cm']:.1f} cm over the high setpoint; "
          f"mitm: {m['mitm:mitm_modbus_exchanges']:.0f} exchanges, false level readings "
          f"{m['mitm:hmi_false_level_share']:.2f}; flood {m['synflood:flood_packets_sent']:.0f}"
          f" SYNs; fuzz {m['fuzz:fuzz_frames_sent']:.0f} frames")
    # Injection: the tank left its band; without attack it stayed inside.
    assert m["inject:tank_left_band"] == 1.0 and m["inject:tank_max_over_high_sp_cm"] > 0
    assert m["inject:inject_writes_accepted"] >= 3
    assert m["baseline:tank_left_band"] == 0.0
    # MITM: it relayed the HMI's polls and the HMI was shown false levels; the baseline's
    # readings all match the ground truth (the comparison itself is sound).
    assert m["mitm:mitm_modbus_exchanges"] > 0
    assert m["mitm:hmi_false_level_share"] > 0
    assert m["baseline:hmi_false_level_share"] == 0.0
    assert m["synflood:flood_packets_sent"] > 0 and m["fuzz:fuzz_frames_sent"] > 0
    assert m["baseline:hmi_availability"] > 0.9

    with open(bundle / "metrics.csv", newline="") as f:
        seen = {r["condition"] for r in csv.DictReader(f)}
    assert seen == set(CONDITIONS)
    for stem in ("hmi_per_attack", "tank_inject_vs_baseline"):
        assert (bundle / f"{stem}.png").stat().st_size > 0, stem
        assert (bundle / f"{stem}.svg").is_file(), stem
    assert {p["stem"] for p in manifest["plots"]} == {"hmi_per_attack",
                                                       "tank_inject_vs_baseline"}
    report = (bundle / "report.html").read_text()
    assert "hmi_per_attack" in report
    assert not {f"{prefix}s1", f"{prefix}s2"} & existing_bridges()
