"""``mtd-longrun`` on a 2^16 pool with decoys, end to end on the real network (one short
window): the /16 plan builds, rhm hops in it with 8 decoys drawn from it, the persistent
attacker sweeps a 4096-address sample of the 65534 in-scope addresses each round, and the
bundle has the cumulative figure and the controller's load with the decoy count. With
``--no-stop-when-all-reached`` the window runs to its end and nothing of the curve is carried
(the early stop itself: test_mtd_longrun_quick.py)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attacks.attacker_common import MAX_SWEEP_ADDRESSES
from reporting.bundle import read_csv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_slash16_pool_with_decoys(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "experiments.run", "mtd-longrun",
                          "--pool-bits", "16", "--intervals-s", "5", "--decoys", "8",
                          "--window-s", "12", "--no-stop-when-all-reached", "--trials", "1",
                          "--quiet", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    print(f"mtd-longrun /16 with decoys: {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    bundle = (tmp_path / "mtd-longrun" / "latest").resolve()
    assert (bundle / "cumulative_reached.png").is_file()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["conditions"] == ["pool16_hop5s_decoys8"]
    assert [t["status"] for t in manifest["trials"]] == ["ok"]
    (load,) = read_csv(bundle / "controller_load.csv")
    assert load["decoys"] == "8" and load["pool_addresses"] == "65528"
    assert float(load["controller_cpu_pct"]) > 0
    # no early stop: the whole window ran, nothing carried, the load sampled every 5 s
    assert json.loads((bundle / "config.json").read_text())["stop_when_all_reached"] is False
    assert load["stop_when_all_reached"] == "0" and load["stopped_early_s"] == ""
    assert float(load["ran_for_s"]) >= 12
    rows = read_csv(bundle / "persistent_progress.csv")
    assert float(rows[-1]["t_s"]) >= 12 and {r["extended"] for r in rows} == {"0"}
    over_time = read_csv(bundle / "controller_load_over_time.csv")
    ts = [float(r["t_s"]) for r in over_time]
    assert len(ts) >= 3 and ts == sorted(ts) and ts[-1] > 10
    assert "pool16_hop5s_decoys8:early_stop_matches_curve" not in manifest["validity"]
    metrics = {r["metric"]: float(r["value"]) for r in read_csv(bundle / "metrics.csv")}
    assert metrics["pool_addresses"] == 65528 and metrics["controller_packet_ins"] > 1000
    assert metrics["attack_decoys_met"] >= 0 and "controller_decoy_answers" in metrics

    raw = bundle / "raw" / "trial-001" / "pool16_hop5s_decoys8"
    wide = ipaddress.IPv4Network("10.0.0.0/16")
    outcome = json.loads((raw / "attack_persistent.json").read_text())
    assert len(outcome["targets"]) == 65534
    assert outcome["rounds"] and all(r["swept"] == MAX_SWEEP_ADDRESSES
                                     for r in outcome["rounds"])
    assert all(ipaddress.IPv4Address(r["address"]) in wide for r in outcome["replies"])
    draws = [line.split("addresses=")[1].split(",")
             for line in (raw / "controller.log").read_text().splitlines()
             if "decoys draw=" in line]
    assert len(draws) >= 2  # drawn at start and again at a hop
    hops = [json.loads(line) for line in (raw / "hops_rhm.jsonl").read_text().splitlines()]
    assert hops and all(ipaddress.IPv4Address(h["new_virtual"]) in wide for h in hops)
    for addresses in draws:
        assert len(set(addresses)) == 8
        assert all(ipaddress.IPv4Address(a.strip()) in wide for a in addresses)
