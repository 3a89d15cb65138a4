"""report.html in a real browser: headless Chromium renders it offline, tables and images show.

Needs the Debian package ``chromium`` (``/usr/bin/chromium``); no network, no root of its own
(marked ``integration`` so it runs with the other tests that need the machine's tools).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reporting.report import write_report
from tests.support.bundles import make_bundle

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 120

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs /usr/bin/chromium (Debian package chromium)"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with no network, sync, updates or first-run dialogs."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert res.returncode == 0, f"chromium failed ({res.returncode}): {res.stderr[-2000:]}"
    return res


@pytest.fixture
def report(tmp_path: Path) -> Path:
    bundle = make_bundle(tmp_path / "results", invalid=True, failed=True, fidelity=True,
                         hostile=True)
    return write_report(bundle)


def test_screenshot_is_not_blank(tmp_path: Path, report: Path) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000",
             report.as_uri())
    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    # A page with one line of text has ~100 (anti-aliased) colours and one colour covers
    # > 99.9 % of it; the report's tables, banners and pills give thousands and far less.
    assert len(colours) > 300, f"only {len(colours)} distinct colours"
    assert counts.max() / counts.sum() < 0.9, "one colour fills the screenshot"


def test_dom_has_tables_images_and_no_script(tmp_path: Path, report: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    assert dom.count("<table") >= 5  # facts, config, packages, validity, trials, summary...
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 2
    assert "INVALID RUN" in dom and "FAILED" in dom and "SATURATED" in dom
    assert "rtt_avg_ms" in dom
    # the hostile strings stayed text: the parsed DOM holds no element the files injected
    assert "<script" not in dom and "&lt;script&gt;" in dom
