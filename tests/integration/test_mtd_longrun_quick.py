"""``mtd-longrun --quick`` end to end on the real network, with the early stop (without it:
the /16 run of test_mtd_longrun.py):
on a 2^8 pool the persistent attacker reaches both PLCs in its first round, so by default the
condition ends seconds into its 60 s window (the PLC logs show every PLC reached, the attacker
takes SIGUSR1 and writes its whole outcome) and the curve is carried flat to 60 s, marked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reporting.bundle import read_csv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_quick(out: Path, *flags: str) -> Path:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "experiments.run", "mtd-longrun", "--quick",
                          *flags, "--quiet", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    print(f"mtd-longrun --quick {' '.join(flags)}: {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return (out / "mtd-longrun" / "latest").resolve()


def test_quick_stops_once_every_plc_is_reached(tmp_path: Path) -> None:
    bundle = run_quick(tmp_path)
    assert json.loads((bundle / "config.json").read_text())["stop_when_all_reached"] is True
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [t["status"] for t in manifest["trials"]] == ["ok"]
    assert manifest["validity"]["pool8_hop5s:early_stop_matches_curve"] is True
    assert manifest["validity"]["pool8_hop5s:attack_completed"] is True
    (load,) = read_csv(bundle / "controller_load.csv")
    assert load["stop_when_all_reached"] == "1" and float(load["window_end_s"]) == 60
    all_reached_s, stopped_s = float(load["all_reached_s"]), float(load["stopped_early_s"])
    ran_for_s = float(load["ran_for_s"])
    assert 0 < all_reached_s <= stopped_s <= ran_for_s < 30  # well before the window's end
    assert float(load["wall_s"]) < 60  # CPU over the part that ran

    rows = read_csv(bundle / "persistent_progress.csv")
    assert float(rows[-1]["t_s"]) == 60  # carried to the window's end
    assert rows[-1]["plcs_reached"] == "2" and rows[-1]["extended"] == "1"
    for r in rows:
        assert r["extended"] == str(int(float(r["t_s"]) > ran_for_s))
        if r["extended"] == "1":
            assert r["plcs_reached"] == "2"  # flat at the maximum

    raw = bundle / "raw" / "trial-001" / "pool8_hop5s"
    outcome = json.loads((raw / "attack_persistent.json").read_text())
    assert not outcome["interrupted"] and not outcome["errors"]
    assert outcome["rounds"][-1]["stopped_early_unix_s"] > outcome["attack_start_unix_s"]
    over_time = read_csv(bundle / "controller_load_over_time.csv")
    assert over_time and all(float(r["flows_total"]) >= 0 for r in over_time)
    assert (bundle / "cumulative_reached.png").is_file()
