"""Re-plotting a copied bundle from its CSVs alone, as an unprivileged user, and comparing
two bundles (no network, no root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "tests" / "unit" / "data" / "bundles" / "rtt-quick"
NOBODY = 65534


def _copy_world_readable(dst_root: Path) -> Path:
    dst = dst_root / "bundle"
    shutil.copytree(BUNDLE, dst)
    for p in [dst_root, dst, *dst.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    return dst


def _as_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_plot_redraws_a_copied_bundle_without_root() -> None:
    root = Path(tempfile.mkdtemp(prefix="sdnics-replot-"))
    try:
        root.chmod(0o777)
        bundle = _copy_world_readable(root)
        assert not list(bundle.glob("*.png"))
        env = {**os.environ, "MPLCONFIGDIR": str(root), "HOME": str(root)}
        drop = _as_nobody if os.geteuid() == 0 else None
        res = subprocess.run([sys.executable, "-m", "experiments.plot", str(bundle)], cwd=REPO,
                             capture_output=True, text=True, timeout=120, env=env,
                             preexec_fn=drop, check=False)
        assert res.returncode == 0, res.stderr
        png = bundle / "rtt_cdf.png"
        assert png.is_file() and png.stat().st_size > 5000
        assert (bundle / "rtt_cdf.svg").is_file()
        assert (bundle / "report.html").is_file()
        if drop is not None:
            assert png.stat().st_uid == NOBODY  # drawn by the unprivileged user
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_compare_two_bundles(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    shutil.copytree(BUNDLE, a)
    shutil.copytree(BUNDLE, b)
    res = subprocess.run([sys.executable, "-m", "experiments.compare", str(a), str(b),
                          "--out", str(tmp_path / "cmp")], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "rtt_p50_ms" in res.stdout
    assert (tmp_path / "cmp" / "comparison.csv").is_file()
    assert (tmp_path / "cmp" / "comparison.png").is_file()


@pytest.mark.parametrize("missing", ["rtt_samples.csv"])
def test_plot_says_what_is_missing(tmp_path: Path, missing: str) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(BUNDLE, bundle)
    (bundle / missing).unlink()
    res = subprocess.run([sys.executable, "-m", "experiments.plot", str(bundle)], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2 and missing in res.stderr and "Traceback" not in res.stderr
