"""``mtd-timing --quick`` (the command in docs/mtd-timing.md) end to end on the real network:
the grid, the measured-vs-model plot, what the manifest says is shared, and success that falls
with a shorter interval."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reporting.summary import flat_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_mtd_timing_quick(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "experiments.run", "mtd-timing", "--quick",
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=150, check=False)
    print(f"mtd-timing --quick: {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    bundle = (tmp_path / "mtd-timing" / "latest").resolve()
    for name in ("timing_grid.png", "timing_grid.svg", "timing_model.png",
                 "timing_attempts.csv", "timing_episodes.csv", "report.html"):
        assert (bundle / name).is_file(), name
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["conditions"] == ["hop2s", "hop20s"]
    for t in manifest["trials"]:
        assert t["status"] == "ok", t
        assert t["timeline"]["episodes"] == 4 and t["timeline"]["shared_network_build"] == 1
    m = flat_metrics(json.loads((bundle / "summary.json").read_text()))
    long_ = m["hop20s:gap0s_success"]
    print({k: v.get("mean") for k, v in m.items() if "success" in k or "scan_s" in k})
    # At 20 s the scan finds the target and a gap-0 exploit mostly lands (model ~0.85-0.9).
    assert long_["n"] >= 3 and long_["mean"] >= 0.5
    assert 0 < m["hop20s:gap0s_model"]["mean"] <= 1
    # At 2 s either the scan misses the target or the exploit lands less often than at 20 s.
    short = m.get("hop2s:gap2s_success", {})
    assert not short.get("n") or short["mean"] <= m["hop20s:gap2s_success"]["mean"]
